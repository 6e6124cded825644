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
from bio_assets.core.reporting.statistics import compare_class
from bio_assets.core.reporting.verdicts import ExtensionResults, Measured
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
    classifier: Mapping[str, object] = field(default_factory=dict)  # classifier's metadata values
    data_efficiency: list[dict] | None = None  # the opt-in study's rows, when it was materialized


def _labelled(images: dict[str, np.ndarray], class_names: tuple[str, ...]) -> LabelledSet:
    present = [n for n in class_names if n in images]
    return LabelledSet(
        torch.from_numpy(np.concatenate([images[n] for n in present])),
        np.concatenate([np.full(len(images[n]), class_names.index(n)) for n in present]),
    )


def synthetic_quality(
    extractors: Mapping[str, FeatureExtractor],
    reference: dict[str, np.ndarray],
    synthetic: dict[str, np.ndarray],
    class_names: tuple[str, ...],
    settings: ReportSettings,
) -> list[ExtractorScores]:
    """FID, IS, KID and class agreement of the synthetic images against the real ``reference`` images, per extractor."""
    real, fake = _labelled(reference, class_names), _labelled(synthetic, class_names)
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


def accuracy_rows(results: ExtensionResults | None, classifier: Mapping[str, object]) -> list[AccuracyRow]:
    """The test accuracy of every training recorded: the ``classifier`` asset's and, from
    ``extended_classifier``, real + synthetic, the control with as many steps, the control with as
    many epochs and TSTR; each a mean over its seeds with an interval over seeds and test images."""
    rows = []
    seeds = len(classifier.get("seeds") or [0])
    own = Measured.from_metadata(classifier, "test_accuracy", seeds)
    if own is not None:
        rows.append(
            AccuracyRow(
                "real only (classifier asset)", own.value, own.low, own.high, own.method,
                _number(classifier, "chance"), _number(classifier, "test_balanced_accuracy"),
            )
        )  # fmt: skip
    if results is None:
        return rows
    arms = (
        ("real only, control with as many steps", results.control, results.control_balanced, results.steps),
        ("real + synthetic", results.extended, results.extended_balanced, results.steps),
        (
            "real only, control with as many epochs",
            results.control_equal_epochs,
            results.control_equal_epochs_balanced,
            results.equal_epoch_steps,
        ),
    )
    for name, measured, balanced, steps in arms:
        if measured is not None:
            rows.append(
                AccuracyRow(
                    name, measured.value, measured.low, measured.high, f"{steps} optimizer steps; {measured.method}",
                    results.chance, balanced,
                )
            )  # fmt: skip
    if results.tstr is not None:
        rows.append(
            AccuracyRow(
                "synthetic only (TSTR)", results.tstr.value, results.tstr.low, results.tstr.high,
                f"{results.tstr_images} test images of classes with synthetic images; {results.tstr.method}",
                results.tstr_chance, results.tstr_balanced,
            )
        )  # fmt: skip
    return rows


def _number(metadata: Mapping[str, object], name: str) -> float | None:
    return float(metadata[name]) if name in metadata else None


def roc_reports(
    models: Mapping[str, StoredClassifier], data: ClassificationData, *, device: torch.device, precision: Precision
) -> dict[str, dict]:
    """The ROC report of each stored model (its first seed) on the test split."""
    labels = data.test.labels.numpy()
    return {
        label: roc_report(
            labels,
            predict_probabilities(
                stored.model.to(device), data.test.images, device, precision=precision, input_size=stored.input_size
            ),
        )
        for label, stored in models.items()
    }


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

    def at_size(split: str) -> dict[str, np.ndarray]:
        return {n: resize_uint8(torch.from_numpy(getattr(splits[n], split).images), size).numpy() for n in names}

    # The reference of FID, KID, KL and class agreement: real images that neither the feature
    # extractors nor the GAN trained on (the test split); the pixel metrics look for copies of the
    # GAN's own training images.
    reference, train = at_size("test"), at_size("train")
    scores = synthetic_quality(extractors, reference, synthetic, names, settings)
    for s in scores:
        log(f"{s.extractor}: FID {s.fid.value:.3f}, KID {s.kid.value:.4f} ({s.seconds:.1f} s)")
    fake_classes = [n for n in names if n in synthetic]
    comparisons = [
        compare_class(
            n, reference[n], synthetic[n], np.random.default_rng(derive_seed(settings.seed, "kl", n)), train=train[n]
        )
        for n in fake_classes
    ]
    extension = ExtensionResults.from_metadata(recorded.extended)
    rows = accuracy_rows(extension, recorded.classifier)
    roc = roc_reports(models, data, device=device, precision=precision)
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
    shown = {n: min(8, len(train[n]), len(synthetic[n])) for n in fake_classes}
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
        samples={n: (train[n][: shown[n]], synthetic[n][: shown[n]]) for n in fake_classes},
        accuracy_rows=rows,
        extension=extension,
        gates=recorded.gates,
        settings=recorded.settings,
        search_comparison=recorded.search_comparison,
        departures=recorded.departures,
        data_efficiency=recorded.data_efficiency,
    )
