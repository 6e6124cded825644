"""The data-efficiency study: at each number of real training images per class, the whole method
again on that subset (augmentation, CNN search, GAN training, synthetic images) and four models
tested on the same real test split:

- the searched network trained on the real images only ("searched", the recipe the baselines get);
- the same network on real + synthetic images ("extended");
- the same network on real images only for as many optimizer steps as "extended" ("control");
- the classic baselines on the real images only, with the same recipe; the one with the best
  validation accuracy is "the best baseline".

The subset of a class is the first ``size`` images of its train split in split order (the order is
a seeded hash of content, so the subsets are random and nested: the 10 images are among the 20).
Validation and test images stay the same at every size. Nothing here reads the test split to
choose: the search scores on validation, training keeps the pass that validation prefers, the
synthetic filter's temperature is fitted on validation, and the best baseline is picked on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from bio_assets.core.cnn.architectures import architecture_spec, build_architecture
from bio_assets.core.cnn.baselines import baseline_defaults
from bio_assets.core.cnn.dataset import ClassificationData, assemble
from bio_assets.core.cnn.evaluation import ClassifierRuns, train_and_test
from bio_assets.core.cnn.extension import ExtensionStudy, extension_study, synthetic_images
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.search import CnnSearchRequest, search_cnn
from bio_assets.core.cnn.training import (
    LabelledImages,
    Precision,
    TrainParams,
    predict_probabilities,
    train_classifier,
)
from bio_assets.core.data.augment import AugmentParams, augment_class
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanImages, GanRecipe, train_gan
from bio_assets.core.io.records import ImageSet, ImageSplits
from bio_assets.core.metrics.calibration import fit_temperature, scaled
from bio_assets.core.metrics.intervals import Interval, accuracy_interval
from bio_assets.core.search.runtime import SearchRuntime
from bio_assets.core.seeding import derive_seed, torch_generator
from bio_assets.core.synthesis.generation import PUBLISHED_SIZE, TrainedGenerator, synthesize


@dataclass(frozen=True)
class StudyGan:
    """The searched generator and discriminator, and how each subset's pair trains."""

    generator: str  # genotype
    discriminator: str
    image_size: int
    generator_width: int
    discriminator_width: int
    batch_size: int
    iterations: int
    recipe: GanRecipe
    images_per_class: int  # generated per class

    def specs(self, num_classes: int) -> tuple[GanNetworkSpec, GanNetworkSpec]:
        generator = GanNetworkSpec("generator", self.generator, self.generator_width, self.image_size, num_classes)
        discriminator = GanNetworkSpec(
            "discriminator", self.discriminator, self.discriminator_width, self.image_size, num_classes,
            auxiliary_classifier=self.recipe.auxiliary_classifier_weight > 0,
        )  # fmt: skip
        return generator, discriminator


@dataclass(frozen=True)
class StudySettings:
    sizes: tuple[int, ...]  # real training images per class; 0: all of them
    seeds: int  # of every classifier training
    augment: AugmentParams
    cell_search: CnnSearchRequest
    macro_search: CnnSearchRequest  # its fixed_cell is each subset's searched cell
    classifier: TrainParams  # the searched network's and the baselines' recipe
    classifier_channels: int
    gan: StudyGan
    synthetic_per_class: int  # synthetic images per class added to the real ones (0: every kept one)
    # Keep a synthetic image only where a real-only model, temperature-scaled on validation, gives its
    # class at least this probability (0: keep all).
    min_synthetic_confidence: float
    baselines: tuple[str, ...]
    baseline_profile: str  # whose per-model input size and BatchNorm handling the baselines take
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sizes or any(s < 0 for s in self.sizes):
            raise ValueError(f"sizes must be images per class >= 1 (0: all), got {self.sizes}")
        if self.seeds < 1 or not self.baselines:
            raise ValueError("a study needs at least one seed and one baseline")
        if not 0.0 <= self.min_synthetic_confidence < 1.0:
            raise ValueError(f"min_synthetic_confidence must be in [0, 1), got {self.min_synthetic_confidence}")


@dataclass
class SizeResult:
    """One training size: every arm's test accuracy with its interval over seeds and test images."""

    size: int  # asked (0: all)
    train_per_class: dict[str, int]  # real training images each class had
    cell: str
    macro: str
    searched: Interval  # real only, the baselines' recipe
    extended: Interval
    control: Interval  # real only, as many optimizer steps as extended
    gain: Interval | None  # extended minus control (None: nothing added)
    best_baseline: str
    baseline: Interval
    baseline_val_accuracy: dict[str, float]  # every baseline's mean validation accuracy (the choice)
    baselines: dict[str, Interval]
    val_accuracy: dict[str, float]  # searched / extended / control mean validation accuracy
    synthetic_generated: int
    synthetic_kept: int
    synthetic_added: int
    filter_temperature: float | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def searched_minus_baseline(self) -> float:
        return self.searched.value - self.baseline.value


def subset_splits(splits: dict[str, ImageSplits], size: int) -> dict[str, ImageSplits]:
    """Each class's first ``size`` training images (all where ``size`` is 0 or above the class's count)."""
    if size < 0:
        raise ValueError(f"size must be >= 0 (0: all), got {size}")
    return {
        name: replace(s, train=s.train.take(np.arange(min(size, len(s.train)) if size else len(s.train))))
        for name, s in splits.items()
    }


def confident_synthetic(
    judge: torch.nn.Module,
    data: ClassificationData,
    fake: LabelledImages,
    threshold: float,
    *,
    device: torch.device,
    precision: Precision,
    input_size: int | None,
) -> tuple[LabelledImages, float]:
    """The synthetic images to which ``judge``, temperature-scaled on ``data.val``, gives their own
    class at least ``threshold``; and the fitted temperature."""
    val = predict_probabilities(judge, data.val.images, device, precision=precision, input_size=input_size)
    temperature = fit_temperature(val, data.val.labels.numpy())
    probabilities = scaled(
        predict_probabilities(judge, fake.images, device, precision=precision, input_size=input_size), temperature
    )  # (M, K)
    own = probabilities[np.arange(len(fake.labels)), fake.labels.numpy()]
    keep = torch.from_numpy(np.flatnonzero(own >= threshold))
    return LabelledImages(fake.images[keep], fake.labels[keep]), temperature


def _mean_val(runs: ClassifierRuns) -> float:
    values = [r.val_accuracy for r in runs.runs if r.val_accuracy is not None]
    return float(np.mean(values)) if values else float("nan")


@dataclass(frozen=True)
class StudyRuntime:
    """Where the study runs: the searches' runtime, the device, the classifiers' and the GANs' precision."""

    search: SearchRuntime
    device: torch.device
    precision: Precision
    gan_precision: Precision
    log: Callable[[str], None] = lambda message: None


def study_size(splits: dict[str, ImageSplits], size: int, settings: StudySettings, at: StudyRuntime) -> SizeResult:
    """Every arm at one training size (see the module's description)."""
    device, precision, log = at.device, at.precision, at.log
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage], clock = round(now - clock, 1), now

    subset = subset_splits(splits, size)
    augmented = {
        name: augment_class(s.train, settings.augment, torch_generator(derive_seed(settings.seed, "augment", name)))
        for name, s in subset.items()
    }
    data = assemble(augmented, subset)
    names, num_classes = data.class_names, len(data.class_names)
    lap("augment")
    cell = search_cnn(data.for_search(), settings.cell_search, at.search).result.best.code
    macro_request = replace(settings.macro_search, fixed_cell=cell)
    macro = search_cnn(data.for_search(), macro_request, at.search).result.best.code
    log(f"{size or 'all'} per class: searched cell {cell}, network {macro}")
    lap("search")

    gan = settings.gan
    generator_spec, discriminator_spec = gan.specs(num_classes)
    generator = build_seeded_gan(generator_spec, derive_seed(settings.seed, "study generator", str(size)))
    discriminator = build_seeded_gan(discriminator_spec, derive_seed(settings.seed, "study discriminator", str(size)))
    params = gan.recipe.params(
        iterations=gan.iterations, batch_size=gan.batch_size, checkpoint_every=gan.iterations, seed=settings.seed
    )
    images = GanImages(resize_uint8(data.train.images, gan.image_size), data.train.labels, num_classes)
    report = train_gan(generator, discriminator, images, params, device=device, precision=at.gan_precision)
    trained = TrainedGenerator(report.sampler.eval(), generator_spec, names, "")
    sets = {}
    for name in names:
        made = synthesize(trained, name, gan.images_per_class, seed=settings.seed, device=device, size=PUBLISHED_SIZE)
        count = len(made)
        sets[name] = ImageSet(made, np.array([f"{name}_{i}" for i in range(count)]), np.array([""] * count), name)
    fake = synthetic_images(data, sets, list(names))
    lap("gan")

    network = NetworkSpec(cell=cell, macro=macro, channels=settings.classifier_channels, num_classes=num_classes)
    spec = architecture_spec("searched", num_classes, settings.classifier_channels, network)
    recipe = settings.classifier
    kept, temperature = fake, None
    if settings.min_synthetic_confidence > 0:
        # A real-only model of its own (not one of the arms, which test on the test split).
        judge_seed = derive_seed(settings.seed, "synthetic filter")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(judge_seed)
            judge = build_architecture(spec)
        train_classifier(
            judge, data.train, replace(recipe, seed=judge_seed), device, precision=precision, validation=data.val
        )
        kept, temperature = confident_synthetic(
            judge, data, fake, settings.min_synthetic_confidence, device=device, precision=precision,
            input_size=recipe.input_size,
        )  # fmt: skip
        log(f"{size or 'all'} per class: kept {len(kept.labels)} of {len(fake.labels)} synthetic (T={temperature:.2f})")
    lap("filter")

    study: ExtensionStudy = extension_study(
        spec, data, kept, recipe, seeds=settings.seeds, device=device, precision=precision, tstr=False,
        extension_per_class=settings.synthetic_per_class, equal_epoch_control=True,
    )  # fmt: skip
    searched = study.control_equal_epochs or study.control
    lap("searched network")

    baselines: dict[str, ClassifierRuns] = {}
    for name in settings.baselines:
        defaults = baseline_defaults(name, settings.baseline_profile)
        params = replace(
            recipe, input_size=int(defaults["input_size"]) or recipe.input_size, precise_bn=bool(defaults["precise_bn"])
        )
        baselines[name] = train_and_test(
            {"kind": "baseline", "name": name, "num_classes": num_classes}, data, params, seeds=settings.seeds,
            device=device, precision=precision,
        )  # fmt: skip
    baseline_val = {name: _mean_val(runs) for name, runs in baselines.items()}
    best = max(baseline_val, key=lambda name: (baseline_val[name], -settings.baselines.index(name)))
    lap("baselines")
    return SizeResult(
        size=size,
        train_per_class={name: len(s.train) for name, s in subset.items()},
        cell=cell,
        macro=macro,
        searched=accuracy_interval(searched.test_correct()),
        extended=accuracy_interval(study.extended.test_correct()),
        control=accuracy_interval(study.control.test_correct()),
        gain=study.gain,
        best_baseline=best,
        baseline=accuracy_interval(baselines[best].test_correct()),
        baseline_val_accuracy={k: round(v, 4) for k, v in baseline_val.items()},
        baselines={name: accuracy_interval(runs.test_correct()) for name, runs in baselines.items()},
        val_accuracy={
            "searched": round(_mean_val(searched), 4),
            "extended": round(_mean_val(study.extended), 4),
            "control": round(_mean_val(study.control), 4),
        },
        synthetic_generated=len(fake.labels),
        synthetic_kept=len(kept.labels),
        synthetic_added=study.num_added,
        filter_temperature=temperature,
        seconds=seconds,
    )


def run_study(splits: dict[str, ImageSplits], settings: StudySettings, at: StudyRuntime) -> list[SizeResult]:
    """``study_size`` at each of ``settings.sizes``, smallest first (0, all images, last)."""
    return [study_size(splits, size, settings, at) for size in sorted(settings.sizes, key=lambda s: (s == 0, s))]
