"""``python -m bench.demo_conditioning [--seed N] [--json FILE]``: does the demo's GAN recipe make
the generator follow its class, on the demo dataset drawn with ``--seed`` (0: the one ``make demo``
uses; other seeds: new draws, so the recipe is not tuned to one draw)?

Trains BioCNN-1 on the real training images as ``feature_extractors`` does, then the searched demo
pair (the ``make demo`` genotypes and shapes) for the demo's iterations twice: with the demo
profile's recipe (ours) and with the source's (reference: TTUR 1e-4 / 4e-4, class parameters at
the generator's rate, projection discriminator only). Prints BioCNN-1's class agreement on 250
class-balanced generated images and the FID every 100 iterations, and the ratio of the final
agreements. Takes about 5 minutes on 2 CPU cores (AVX2 only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.demo_data import demo_classification_data
from bench.results import BenchResult, write_json
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.scoring import balanced_labels
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanImages, GanRecipe, generate, train_gan
from bio_assets.core.metrics.extractors import domain_extractor, train_extractor
from bio_assets.core.metrics.fid import FeatureStatistics, fid_from_statistics
from bio_assets.core.profiles import profile_setting

GENERATOR, DISCRIMINATOR = "{3, 42-1, [3]}", "{3, 63-1, [3]}"  # the genotypes make demo found
CPU = torch.device("cpu")


def recipe(profile: str) -> GanRecipe:
    fields = ("generator_lr", "discriminator_lr", "conditioning_lr_multiplier", "auxiliary_classifier_weight")
    return GanRecipe(**{f: profile_setting(profile, "trained_gan", f) for f in fields})


def run(seed: int, profile: str, data, extractor, reference) -> dict:
    """Train the demo pair with ``profile``'s recipe; (iteration, agreement, FID) every 100 iterations."""
    size, iterations = (int(profile_setting("demo", "trained_gan", f)) for f in ("image_size", "iterations"))
    shape = {f: int(profile_setting("demo", "trained_gan", f)) for f in ("generator_width", "discriminator_width")}
    chosen = recipe(profile)
    num_classes = len(data.class_names)
    generator = build_seeded_gan(GanNetworkSpec("generator", GENERATOR, shape["generator_width"], size, num_classes), 1)
    discriminator = build_seeded_gan(
        GanNetworkSpec(
            "discriminator", DISCRIMINATOR, shape["discriminator_width"], size, num_classes,
            auxiliary_classifier=chosen.auxiliary_classifier_weight > 0,
        ),
        2,
    )  # fmt: skip
    labels = balanced_labels(250, num_classes)

    def evaluate(model) -> tuple[float, float]:
        fake = generate(model, labels, torch.Generator().manual_seed(seed + 123), CPU)
        agreement = float((extractor.probabilities(fake).argmax(1) == labels.numpy()).mean())
        fid = fid_from_statistics(reference, FeatureStatistics.of(extractor.features(fake)), "biocnn1", "").value
        return agreement, fid

    curve: list[tuple[float, float]] = []
    params = chosen.params(
        iterations=iterations, batch_size=int(profile_setting("demo", "trained_gan", "batch_size")),
        checkpoint_every=iterations, seed=seed,
    )  # fmt: skip
    images = GanImages(resize_uint8(data.train.images, size), data.train.labels, num_classes)
    started = time.perf_counter()
    report = train_gan(
        generator, discriminator, images, params, device=CPU,
        evaluate=lambda model: (curve.append(evaluate(model)), curve[-1][1])[1], evaluate_every=100,
    )  # fmt: skip
    rows = [(step, *values) for (step, _), values in zip(report.curve, curve)]
    return {"rows": rows, "seconds": time.perf_counter() - started, "recipe": chosen}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="demo dataset draw (0: the make demo one)")
    parser.add_argument("--json", default="", help="also write the result here")
    args = parser.parse_args(argv)
    data = demo_classification_data(seed=args.seed)
    epochs = int(profile_setting("demo", "feature_extractors", "biocnn1_epochs"))
    width = int(profile_setting("demo", "feature_extractors", "width"))
    trained = train_extractor(
        "biocnn1", data.train, data.val, num_classes=len(data.class_names), width=width,
        params=TrainParams(epochs=epochs, batch_size=32, learning_rate=3e-3), device=CPU,
    )  # fmt: skip
    extractor = domain_extractor("biocnn1", trained.model, int(data.train.images.shape[1]), CPU)
    real_test = float((extractor.probabilities(data.test.images).argmax(1) == data.test.labels.numpy()).mean())
    reference = FeatureStatistics.of(extractor.features(data.train.images))
    print(f"demo dataset seed {args.seed}: BioCNN-1 validation accuracy {trained.val_accuracy:.3f}, "
          f"real test images in their class {real_test:.3f}")  # fmt: skip
    results = {}
    for profile in ("demo", "paper"):
        results[profile] = run(args.seed, profile, data, extractor, reference)
        print(f"\n{profile} recipe: {results[profile]['recipe']}")
        print("iteration  class agreement  FID (BioCNN-1)")
        for step, agreement, fid in results[profile]["rows"]:
            print(f"{step:9d}  {agreement:15.3f}  {fid:14.2f}")
    ours, reference_agreement = results["demo"]["rows"][-1][1], results["paper"]["rows"][-1][1]
    ratio = ours / max(reference_agreement, 1e-9)
    chance = 1 / len(data.class_names)
    print(
        f"\nclass agreement after {results['demo']['rows'][-1][0]} iterations: demo recipe {ours:.3f}, "
        f"source recipe {reference_agreement:.3f} (chance {chance:.3f}); ratio {ratio:.2f}"
    )
    if args.json:
        result = BenchResult(
            f"demo_conditioning_seed{args.seed}", ours, reference_agreement, "class agreement", ratio,
            f"BioCNN-1 on 250 generated images, demo dataset seed {args.seed}; real test images {real_test:.3f}",
        )  # fmt: skip
        write_json(Path(args.json), [result])


if __name__ == "__main__":
    main()
