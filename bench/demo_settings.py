"""``python -m bench.demo_settings [--draws 1 2] [--json FILE]``: choose the demo profile's
synthetic-data settings on other draws of the demo dataset, never on the draw ``make demo`` uses
(seed 0) and never on a test split it reads.

Each draw is generated, split, augmented and trained on as ``make demo`` does, with the genotypes
``make demo`` found (``--cell``, ``--macro``, ``--generator``, ``--discriminator``; chosen there by
validation accuracy and FID against training images, so no test split chose them). A draw's own
validation and test images (90 real images that nothing trained on) score every setting here.

1. **The GAN**: the searched pair trains with the demo recipe, at each AC-GAN class-loss weight
   (``--aux-weights``), for the longest ``--iterations``; its EMA generator is snapshotted at each.
   Per weight, snapshot and images per class (``--generated``): TSTR (train on synthetic images
   only, at the GAN's 32 px) and the real-only control's agreement with the conditioning class
   (GAN-test). The largest mean TSTR over draws and seeds wins; a tie within 0.01 goes to fewer
   iterations, then fewer images (cheaper), then the profile's weight.
2. **The classifier**: with the chosen generator, per classifier input size and synthetic images
   per class added to the real ones (``--per-class`` at the GAN's 32 px, 0: all;
   ``--per-class-other-sizes`` at the others): the extended model's accuracy, and
   the gain over the real-only control with as many optimizer steps. The largest mean extended
   accuracy wins; a tie within 0.01 goes to the smaller input, then fewer synthetic images.

``--baselines-only`` instead checks the demo baselines' two departures from a plain run on the same
held-out images: BatchNorm statistics recomputed after MobileNetV3's short training, and VGG-16 at
Adam 1e-4 rather than 1e-3.

Prints every measurement and the choice; the defaults take about 40 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench.demo_data import demo_classification_data
from bio_assets.core.cnn.architectures import architecture_spec
from bio_assets.core.cnn.baselines import baseline_defaults
from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.evaluation import ClassifierRuns, train_and_test
from bio_assets.core.cnn.extension import extended, first_per_class, synthetic_images, synthetic_only
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import LabelledImages, TrainParams, optimizer_steps
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanImages, GanRecipe, train_gan
from bio_assets.core.hardware import gan_precision_for, precision_for
from bio_assets.core.io.records import ImageSet
from bio_assets.core.metrics.intervals import accuracy_interval, difference_interval
from bio_assets.core.profiles import profile_setting
from bio_assets.core.synthesis.generation import PUBLISHED_SIZE, TrainedGenerator, synthesize

CPU = torch.device("cpu")
TIE = 0.01


def held_out(data: ClassificationData) -> ClassificationData:
    """The draw's validation and test images together as the images every setting is scored on."""
    test = LabelledImages(
        torch.cat([data.val.images, data.test.images]), torch.cat([data.val.labels, data.test.labels])
    )
    return replace(data, test=test)


def demo(asset: str, field: str):
    return profile_setting("demo", asset, field)


def train_generator_snapshots(data: ClassificationData, args, auxiliary_weight: float) -> dict[int, dict]:
    """The searched pair trained with the demo recipe at AC-GAN weight ``auxiliary_weight``; the EMA
    generator's weights at each of ``args.iterations``."""
    size, num_classes = int(demo("trained_gan", "image_size")), len(data.class_names)
    recipe = GanRecipe(
        **{f: demo("trained_gan", f) for f in ("generator_lr", "discriminator_lr", "conditioning_lr_multiplier")},
        auxiliary_classifier_weight=auxiliary_weight,
    )
    generator_spec = GanNetworkSpec("generator", args.generator, int(demo("trained_gan", "generator_width")), size,
                                    num_classes)  # fmt: skip
    discriminator_spec = GanNetworkSpec(
        "discriminator", args.discriminator, int(demo("trained_gan", "discriminator_width")), size, num_classes,
        auxiliary_classifier=recipe.auxiliary_classifier_weight > 0,
    )  # fmt: skip
    generator, discriminator = build_seeded_gan(generator_spec, 1), build_seeded_gan(discriminator_spec, 2)
    longest = max(args.iterations)
    params = recipe.params(
        iterations=longest, batch_size=int(demo("trained_gan", "batch_size")), checkpoint_every=longest, seed=0
    )
    images = GanImages(resize_uint8(data.train.images, size), data.train.labels, num_classes)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    step = {"at": 0}

    def snapshot(model) -> float:
        step["at"] += args.snapshot_every
        if step["at"] in args.iterations:
            snapshots[step["at"]] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return 0.0

    train_gan(
        generator, discriminator, images, params, device=CPU, precision=gan_precision_for(CPU, amp=True),
        evaluate=snapshot, evaluate_every=args.snapshot_every,
    )  # fmt: skip
    missing = set(args.iterations) - set(snapshots)
    if missing:
        raise RuntimeError(f"no generator snapshot at iterations {sorted(missing)}")
    return {k: {"state": v, "spec": generator_spec} for k, v in snapshots.items()}


def synthetic_sets(snapshot: dict, data: ClassificationData, count: int) -> dict[str, ImageSet]:
    """``count`` images per class, generated and published at 64 px as ``synthetic_dataset`` does."""
    model = build_seeded_gan(snapshot["spec"], 0)
    model.load_state_dict(snapshot["state"])
    trained = TrainedGenerator(model.eval(), snapshot["spec"], data.class_names, "")
    sets = {}
    for name in data.class_names:
        images = synthesize(trained, name, count, seed=0, device=CPU, size=PUBLISHED_SIZE)
        sets[name] = ImageSet(images, np.array([f"{name}_{i}" for i in range(count)]), np.array([""] * count), name)
    return sets


class Trainer:
    """The searched network trained over ``seeds`` seeds with the demo extended classifier's settings."""

    def __init__(self, args, num_classes: int) -> None:
        network = NetworkSpec(args.cell, args.macro, 32, num_classes)
        self.spec = architecture_spec("searched", num_classes, 32, network)
        self.params = TrainParams(
            epochs=int(demo("extended_classifier", "epochs")), batch_size=64,
            optimizer=str(demo("extended_classifier", "optimizer")), learning_rate=None, defaults="keras",
        )  # fmt: skip
        self.seeds, self.precision, self.trainings = args.seeds, precision_for(CPU, amp=True), 0

    def __call__(self, data: ClassificationData, *, steps: int | None = None, judged=None) -> ClassifierRuns:
        self.trainings += self.seeds
        return train_and_test(
            self.spec, data, replace(self.params, steps=steps), seeds=self.seeds, device=CPU,
            precision=self.precision, also_score=judged,
        )  # fmt: skip


def choose(rows: list[dict], score: str, cost) -> dict:
    """The row with the largest mean ``score``; rows within ``TIE`` of it go to the smallest ``cost(row)``."""
    best = max(r[score] for r in rows)
    return min((r for r in rows if r[score] >= best - TIE), key=cost)


def mean_over_draws(rows: list[dict], keys: tuple[str, ...], score: str) -> list[dict]:
    grouped: dict[tuple, list[float]] = {}
    for row in rows:
        grouped.setdefault(tuple(row[k] for k in keys), []).append(row[score])
    return [{**dict(zip(keys, k)), score: float(np.mean(v)), "draws": len(v)} for k, v in grouped.items()]


def gan_stage(draw: int, data: ClassificationData, snapshots: dict, trainer: Trainer, args) -> list[dict]:
    at_gan = held_out(data).at_size(int(demo("trained_gan", "image_size")))
    fakes = {
        (weight, iterations, count): synthetic_images(
            at_gan, synthetic_sets(snapshots[weight, iterations], data, count), list(data.class_names)
        )
        for (weight, iterations), count in itertools.product(sorted(snapshots), args.generated)
    }
    # One real-only control judges every synthetic set (GAN-test).
    judge = trainer(at_gan, judged={str(key): fake for key, fake in fakes.items()})
    rows = []
    for (weight, iterations, count), fake in fakes.items():
        tstr = accuracy_interval(trainer(synthetic_only(at_gan, fake)).test_correct())
        row = {
            "draw": draw, "auxiliary_classifier_weight": weight, "iterations": iterations, "generated": count,
            "tstr": tstr.value, "tstr_ci": [tstr.low, tstr.high],
            "gan_test": float(judge.scored_correct(str((weight, iterations, count))).mean()),
            "control": float(judge.test_correct().mean()),
        }  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def classifier_stage(draw: int, data: ClassificationData, synthetic: dict, trainer: Trainer, args) -> list[dict]:
    rows = []
    gan_size = int(demo("trained_gan", "image_size"))
    for size in args.sizes:
        scored = held_out(data).at_size(size)
        fake = synthetic_images(scored, synthetic, list(data.class_names))
        for per_class in args.per_class if size == gan_size else args.per_class_other_sizes:
            with_synthetic = extended(scored, first_per_class(fake, per_class))
            steps = optimizer_steps(len(with_synthetic.train.labels), trainer.params)
            control, ext = trainer(scored, steps=steps), trainer(with_synthetic)
            gain = difference_interval(ext.test_correct(), control.test_correct())
            row = {
                "draw": draw, "input_size": size, "per_class": per_class,
                "added": len(with_synthetic.train.labels) - len(scored.train.labels),
                "extended": float(ext.test_correct().mean()), "control": float(control.test_correct().mean()),
                "gain": gain.value, "gain_ci": [gain.low, gain.high],
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


# The demo baselines' two departures from a plain run, each against the plain alternative.
BASELINE_CHOICES = {"mobilenet_v3": ("precise_bn", (True, False)), "vgg16": ("learning_rate", (1e-4, 1e-3))}


def baseline_stage(draw: int, data: ClassificationData, seeds: int) -> list[dict]:
    """Each ``BASELINE_CHOICES`` model at the demo's per-model settings, and with the alternative."""
    rows = []
    for name, (field, options) in BASELINE_CHOICES.items():
        for option in options:
            values = {**baseline_defaults(name, "demo"), field: option}
            params = TrainParams(
                epochs=int(values["epochs"]), batch_size=int(values["batch_size"]), optimizer="adam",
                learning_rate=float(values["learning_rate"]), input_size=int(values["input_size"]) or None,
                precise_bn=bool(values["precise_bn"]),
            )  # fmt: skip
            spec = {"kind": "baseline", "name": name, "num_classes": len(data.class_names)}
            runs = train_and_test(
                spec, held_out(data), params, seeds=seeds, device=CPU, precision=precision_for(CPU, amp=True)
            )
            row = {"draw": draw, "model": name, field: option, "accuracy": float(runs.test_correct().mean())}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, nargs="+", default=[1, 2], help="demo dataset seeds (0 is make demo's)")
    parser.add_argument("--cell", default="3134-225-43-0", help="make demo's searched cell")
    parser.add_argument("--macro", default="6-[0,1,2,3]", help="make demo's searched macro architecture")
    parser.add_argument("--generator", default="{5, 2551-364-15-5, [1]}", help="make demo's searched generator")
    parser.add_argument("--discriminator", default="{3, 31-5, [1, 3]}", help="make demo's searched discriminator")
    parser.add_argument("--iterations", type=int, nargs="+", default=[300, 600, 900])
    parser.add_argument("--snapshot-every", type=int, default=300)
    parser.add_argument("--generated", type=int, nargs="+", default=[256, 512], help="images generated per class")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="classifier input sizes")
    parser.add_argument(
        "--per-class", type=int, nargs="+", default=[60, 120, 240, 0], help="at the GAN's size; 0: every synthetic"
    )
    parser.add_argument(
        "--per-class-other-sizes", type=int, nargs="+", default=[120], help="at the other sizes (4x the cost at 64 px)"
    )
    parser.add_argument(
        "--aux-weights",
        type=float,
        nargs="+",
        default=[float(demo("trained_gan", "auxiliary_classifier_weight"))],
        help="AC-GAN class-loss weights to train the GAN with",
    )
    parser.add_argument("--gan-only", action="store_true", help="stop after choosing the GAN's settings")
    parser.add_argument(
        "--baselines-only", action="store_true", help="only the demo baselines' precise BN and VGG-16's learning rate"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", default="", help="write every row and the choice here")
    args = parser.parse_args(argv)
    if 0 in args.draws:
        raise SystemExit("draw 0 is the dataset make demo uses: choose its settings on other draws")
    started = time.perf_counter()
    draws = {
        d: demo_classification_data(int(demo("augmented_dataset", "target_per_class")), seed=d) for d in args.draws
    }
    if args.baselines_only:
        rows = [row for d, data in draws.items() for row in baseline_stage(d, data, args.seeds)]
        if args.json:
            Path(args.json).write_text(json.dumps({"draws": args.draws, "baselines": rows}, indent=1))
        return
    trainer = Trainer(args, len(next(iter(draws.values())).class_names))
    snapshots = {
        d: {
            (weight, iterations): snapshot
            for weight in args.aux_weights
            for iterations, snapshot in train_generator_snapshots(data, args, weight).items()
        }
        for d, data in draws.items()
    }
    gan_rows = [row for d, data in draws.items() for row in gan_stage(d, data, snapshots[d], trainer, args)]
    current = float(demo("trained_gan", "auxiliary_classifier_weight"))
    keys = ("auxiliary_classifier_weight", "iterations", "generated")
    gan_choice = choose(
        mean_over_draws(gan_rows, keys, "tstr"), "tstr",
        lambda r: (r["iterations"], r["generated"], abs(r["auxiliary_classifier_weight"] - current)),
    )  # fmt: skip
    print(f"GAN choice: {gan_choice}", flush=True)
    classifier_rows, classifier_choice = [], None
    if not args.gan_only:
        chosen = (gan_choice["auxiliary_classifier_weight"], gan_choice["iterations"])
        classifier_rows = [
            row
            for d, data in draws.items()
            for row in classifier_stage(
                d, data, synthetic_sets(snapshots[d][chosen], data, gan_choice["generated"]), trainer, args
            )
        ]
        classifier_choice = choose(
            mean_over_draws(classifier_rows, ("input_size", "per_class"), "extended"), "extended",
            lambda r: (r["input_size"], r["per_class"] or float("inf")),  # 0 (every synthetic image) costs most
        )  # fmt: skip
        print(f"classifier choice: {classifier_choice}", flush=True)
    minutes = (time.perf_counter() - started) / 60
    print(f"{trainer.trainings} classifier trainings, {minutes:.1f} min", flush=True)
    if args.json:
        result = {
            "draws": args.draws, "gan": gan_rows, "gan_choice": gan_choice, "classifier": classifier_rows,
            "classifier_choice": classifier_choice, "minutes": minutes, "arguments": vars(args),
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
