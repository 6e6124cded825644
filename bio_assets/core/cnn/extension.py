"""Does synthetic data help? Training sets that add synthetic images to the real ones or use
them alone (TSTR), the equal-settings real-only control, and the paired bootstrap that compares
two classifiers on one test split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.evaluation import ClassifierRuns, SeedRun, train_and_test
from bio_assets.core.cnn.training import LabelledImages, Precision, TrainParams
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.io.records import ImageSet
from bio_assets.core.seeding import derive_seed


def synthetic_images(data: ClassificationData, synthetic: dict[str, ImageSet], classes: list[str]) -> LabelledImages:
    """The synthetic images of ``classes`` at the real images' size, labelled with ``data``'s class indices."""
    unknown = sorted(set(classes) - set(data.class_names))
    if unknown:
        raise ValueError(f"synthetic classes {unknown} are not classes of the real data {list(data.class_names)}")
    size = int(data.train.images.shape[1])
    if not classes:
        return LabelledImages(torch.zeros((0, size, size, 3), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    images = torch.cat([resize_uint8(torch.from_numpy(synthetic[name].images), size) for name in classes])
    labels = torch.cat(
        [torch.full((len(synthetic[name]),), data.class_names.index(name), dtype=torch.int64) for name in classes]
    )
    return LabelledImages(images, labels)


def extended(data: ClassificationData, fake: LabelledImages) -> ClassificationData:
    """Real (augmented) train images plus ``fake``; validation and test stay real."""
    train = LabelledImages(torch.cat([data.train.images, fake.images]), torch.cat([data.train.labels, fake.labels]))
    return replace(data, train=train, version=f"{data.version}+{len(fake.labels)}synthetic")


def first_per_class(images: LabelledImages, per_class: int) -> LabelledImages:
    """The first ``per_class`` images of each label, in their order (all of them where ``per_class`` is 0)."""
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0 (0: all), got {per_class}")
    if per_class == 0:
        return images
    keep = (
        torch.cat(
            [torch.nonzero(images.labels == label).flatten()[:per_class] for label in torch.unique(images.labels)]
            or [torch.zeros(0, dtype=torch.int64)]
        )
        .sort()
        .values
    )
    return LabelledImages(images.images[keep], images.labels[keep])


def synthetic_only(data: ClassificationData, fake: LabelledImages) -> ClassificationData:
    """Train on synthetic images, test on the real test images of the classes that have synthetic ones (TSTR)."""
    if len(fake.labels) == 0:
        raise ValueError("TSTR needs synthetic images of at least one class")
    covered = torch.unique(fake.labels)
    keep = torch.isin(data.test.labels, covered)
    test = LabelledImages(data.test.images[keep], data.test.labels[keep])
    return replace(data, train=fake, test=test, version=f"synthetic-only:{len(fake.labels)}")


def paired_bootstrap(
    correct_a: np.ndarray, correct_b: np.ndarray, samples: int, rng: np.random.Generator, level: float = 0.95
) -> dict[str, float]:
    """Accuracy difference a - b on one test set with a percentile bootstrap interval: test
    images are resampled with replacement, the same rows for both models (paired)."""
    correct_a, correct_b = np.asarray(correct_a, np.float64), np.asarray(correct_b, np.float64)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1 or len(correct_a) == 0:
        raise ValueError(
            f"paired bootstrap needs two equal-length non-empty 1-D arrays, got {correct_a.shape} and {correct_b.shape}"
        )
    if samples < 100:
        raise ValueError(f"bootstrap samples must be >= 100, got {samples}")
    rows = rng.integers(0, len(correct_a), size=(samples, len(correct_a)))  # (B, N)
    differences = correct_a[rows].mean(axis=1) - correct_b[rows].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return {
        "difference": float(correct_a.mean() - correct_b.mean()),
        "low": float(low),
        "high": float(high),
        "level": level,
        "samples": samples,
    }


@dataclass(frozen=True)
class ExtensionStudy:
    """The searched network trained three ways under one ``TrainParams``: real + synthetic, real
    only (the control), synthetic only (TSTR); ``gain`` is extended minus control on the test split."""

    extended: ClassifierRuns
    extended_data: ClassificationData  # the real + synthetic training set ``extended`` was trained on
    control: ClassifierRuns
    tstr: ClassifierRuns | None  # None without synthetic images or when turned off
    tstr_num_test_images: int
    gain: dict[str, float]  # paired_bootstrap's difference, low, high, level, samples


def extension_study(
    spec: dict,
    data: ClassificationData,
    fake: LabelledImages,
    params: TrainParams,
    *,
    seeds: int,
    device: torch.device,
    precision: Precision = Precision(),
    tstr: bool = True,
    bootstrap_samples: int = 2000,
    extension_per_class: int = 0,
    on_seed: Callable[[str, SeedRun], None] | None = None,
) -> ExtensionStudy:
    """Train ``spec`` on real + ``fake`` (its first ``extension_per_class`` images per class; 0: all),
    on real only with the same epochs, optimizer and seeds (so the gain measures the synthetic images,
    not a longer or different training), and on all of ``fake`` alone (TSTR); compare the first two on
    every real test image, averaged over seeds."""

    def trained(label: str, training_data: ClassificationData) -> ClassifierRuns:
        report = (lambda run: on_seed(label, run)) if on_seed is not None else None
        return train_and_test(
            spec, training_data, params, seeds=seeds, device=device, precision=precision, on_seed=report
        )

    extended_data = extended(data, first_per_class(fake, extension_per_class))
    with_synthetic = trained("real + synthetic", extended_data)
    control = trained("real only (control)", data)
    gain = paired_bootstrap(
        with_synthetic.test_correct(),
        control.test_correct(),
        bootstrap_samples,
        np.random.default_rng(derive_seed(params.seed, "bootstrap")),
    )
    tstr_runs, tstr_count = None, 0
    if tstr and len(fake.labels):
        tstr_data = synthetic_only(data, fake)
        tstr_runs, tstr_count = trained("synthetic only (TSTR)", tstr_data), len(tstr_data.test.labels)
    return ExtensionStudy(with_synthetic, extended_data, control, tstr_runs, tstr_count, gain)
