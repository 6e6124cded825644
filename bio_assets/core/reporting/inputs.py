"""Everything the report shows, computed from the data, the synthetic images, the trained models
and the numbers other assets recorded: synthetic-image quality per extractor, per-class KL, the
accuracy rows with their intervals and the ROC curves. Pure torch/numpy; the Dagster layer only
reads the recorded numbers (``RecordedResults``) from its instance."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from bio_assets.core.cnn.architectures import StoredClassifier
from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.training import Precision, predict_probabilities
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.io.records import ImageSet, ImageSplits
from bio_assets.core.metrics.classification import roc_report
from bio_assets.core.metrics.extractors import FeatureExtractor
from bio_assets.core.metrics.synthetic import ExtractorScores, LabelledSet, score_synthetic
from bio_assets.core.reporting.report import AccuracyRow, ReportInputs
from bio_assets.core.reporting.statistics import compare_class, wilson_interval
from bio_assets.core.seeding import derive_seed


@dataclass(frozen=True)
class ReportSettings:
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 1
    seed: int = 0  # KID's subsets and the KL protocol's image draws


@dataclass(frozen=True)
class RecordedResults:
    """What other assets recorded: model rows, the extended classifier's numbers, gates, settings."""

    cnn_rows: list[dict]
    gan_rows: list[dict]
    gan_extractor: str
    extended: Mapping[str, object]  # extended_classifier's metadata values
    gates: dict[str, tuple[bool, list[str]]]
    settings: list[tuple[str, dict]]
    search_comparison: dict | None = None
    departures: list[tuple[str, str, str, str]] = field(default_factory=list)


def _labelled(images: dict[str, np.ndarray], class_names: tuple[str, ...]) -> LabelledSet:
    present = [n for n in class_names if n in images]
    return LabelledSet(
        torch.from_numpy(np.concatenate([images[n] for n in present])),
        np.concatenate([np.full(len(images[n]), class_names.index(n)) for n in present]),
    )


def synthetic_quality(
    extractors: Mapping[str, FeatureExtractor],
    real_by_class: dict[str, np.ndarray],
    synthetic: dict[str, np.ndarray],
    class_names: tuple[str, ...],
    settings: ReportSettings,
) -> list[ExtractorScores]:
    """FID, IS, KID and class agreement of the synthetic images against the real train images, per extractor."""
    real, fake = _labelled(real_by_class, class_names), _labelled(synthetic, class_names)
    return [
        score_synthetic(
            extractor,
            real,
            fake,
            class_names=class_names,
            rng=np.random.default_rng(derive_seed(settings.seed, "kid", name)),
            kid_subsets=settings.kid_subsets,
            kid_subset_size=settings.kid_subset_size,
            is_splits=settings.is_splits,
        )  # fmt: skip
        for name, extractor in extractors.items()
    ]


def accuracy_rows(
    models: Mapping[str, StoredClassifier],
    data: ClassificationData,
    extended: Mapping[str, object],
    *,
    device: torch.device,
    precision: Precision = Precision(),
) -> tuple[list[AccuracyRow], dict[str, dict]]:
    """Test accuracy with a Wilson interval for each stored model (first seed), the equal-settings
    control and TSTR recorded by ``extended_classifier``; the ROC report of each stored model."""
    labels, n = data.test.labels.numpy(), len(data.test.labels)
    rows, roc = [], {}
    for label, stored in models.items():
        probabilities = predict_probabilities(
            stored.model.to(device), data.test.images, device, precision=precision, input_size=stored.input_size
        )
        correct = int((probabilities.argmax(1) == labels).sum())
        rows.append(
            AccuracyRow(
                label, correct / n, *wilson_interval(correct, n), f"first seed, {n} test images, Wilson interval"
            )
        )
        roc[label] = roc_report(labels, probabilities)
    if "control_accuracy" in extended:
        control = float(extended["control_accuracy"])
        note = f"trained inside extended_classifier with its epochs and optimizer; mean over seeds, {n} test images"
        rows.insert(
            1, AccuracyRow("real only, equal-settings control", control, *wilson_interval(round(control * n), n), note)
        )
    if "tstr_accuracy" in extended:
        tstr, count = float(extended["tstr_accuracy"]), int(extended["tstr_num_test_images"])
        note = (
            f"mean over seeds (std {float(extended['tstr_accuracy_std']):.3f}), {count} test images of classes with "
            "synthetic images"
        )
        rows.append(AccuracyRow("synthetic only (TSTR)", tstr, *wilson_interval(round(tstr * count), count), note))
    return rows, roc


def report_inputs(
    dataset: str,
    data: ClassificationData,
    splits: dict[str, ImageSplits],
    augmented: dict[str, ImageSet],
    synthetic: dict[str, np.ndarray],
    *,
    extractors: Mapping[str, FeatureExtractor],
    models: Mapping[str, StoredClassifier],
    recorded: RecordedResults,
    settings: ReportSettings,
    inception_status: str,
    device: torch.device,
    precision: Precision = Precision(),
    log: Callable[[str], None] = lambda message: None,
) -> ReportInputs:
    """Every number of the report. ``synthetic``: uint8 ``(M, S, S, 3)`` per class that has images;
    ``models``: the stored classifiers by row label ("real only", "real + synthetic")."""
    names = data.class_names
    size = int(next(iter(synthetic.values())).shape[1])
    real_by_class = {n: resize_uint8(torch.from_numpy(splits[n].train.images), size).numpy() for n in names}
    scores = synthetic_quality(extractors, real_by_class, synthetic, names, settings)
    for s in scores:
        log(f"{s.extractor}: FID {s.fid.value:.3f}, KID {s.kid.value:.4f} ({s.seconds:.1f} s)")
    fake_classes = [n for n in names if n in synthetic]
    comparisons = [
        compare_class(n, real_by_class[n], synthetic[n], np.random.default_rng(derive_seed(settings.seed, "kl", n)))
        for n in fake_classes
    ]
    rows, roc = accuracy_rows(models, data, recorded.extended, device=device, precision=precision)
    gain_keys = ("accuracy_gain", "accuracy_gain_ci_low", "accuracy_gain_ci_high", "accuracy_gain_interval")
    counts = {
        n: {
            "raw": sum(len(getattr(splits[n], s)) for s in ("train", "val", "test")),
            "train": len(splits[n].train),
            "val": len(splits[n].val),
            "test": len(splits[n].test),
            "augmented": len(augmented[n]),
            "synthetic": len(synthetic.get(n, ())),
        }
        for n in names
    }
    shown = {n: min(8, len(real_by_class[n]), len(synthetic[n])) for n in fake_classes}
    return ReportInputs(
        dataset=dataset,
        class_names=names,
        counts=counts,
        cnn_rows=recorded.cnn_rows,
        gan_rows=recorded.gan_rows,
        gan_extractor=recorded.gan_extractor,
        extractor_scores=scores,
        inception_status=inception_status,
        comparisons=comparisons,
        roc=roc,
        samples={n: (real_by_class[n][: shown[n]], synthetic[n][: shown[n]]) for n in fake_classes},
        accuracy_rows=rows,
        gain={k: recorded.extended[k] for k in gain_keys} if "accuracy_gain" in recorded.extended else None,
        gates=recorded.gates,
        settings=recorded.settings,
        search_comparison=recorded.search_comparison,
        departures=recorded.departures,
    )
