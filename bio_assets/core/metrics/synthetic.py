"""The source's Table 1.7 for one feature extractor: FID (overall and per class), Inception
Score and KID of synthetic against real images, with the time each extractor took."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from bio_assets.core.metrics.classification import majority_rate
from bio_assets.core.metrics.distribution import ScoreValue, inception_score, kernel_inception_distance
from bio_assets.core.metrics.extractors import FeatureExtractor
from bio_assets.core.metrics.fid import FeatureStatistics, FidValue, fid_from_statistics


@dataclass(frozen=True)
class LabelledSet:
    """uint8 images ``(N, S, S, 3)`` with class indices ``(N,)`` into ``class_names``."""

    images: torch.Tensor
    labels: np.ndarray

    def of_class(self, index: int) -> torch.Tensor:
        return self.images[torch.from_numpy(self.labels == index)]


@dataclass(frozen=True)
class ExtractorScores:
    extractor: str
    resize_mode: str
    fid: FidValue
    class_fid: dict[str, FidValue]
    inception_score: ScoreValue | None  # None when the extractor has no classifier head
    kid: ScoreValue
    seconds: float
    # Share of synthetic images the extractor's classifier assigns to the class they were
    # generated for, and the same share on the real images (what a faithful class reaches):
    # near 1/K the generator ignores its class input. None without a classifier head.
    class_agreement: ScoreValue | None = None
    real_agreement: ScoreValue | None = None
    class_fid_skipped: dict[str, str] = field(default_factory=dict)  # class -> why it has no FID

    def rows(self) -> list[dict]:
        """One row per number, each with its full provenance."""
        rows = [{**self.fid.to_json(), "metric": "fid", "class": "all"}]
        rows += [{**value.to_json(), "metric": "fid", "class": name} for name, value in self.class_fid.items()]
        scores = (self.inception_score, self.kid, self.class_agreement, self.real_agreement)
        rows += [
            {**score.to_json(), "class": "all", "resize_mode": self.resize_mode}
            for score in scores
            if score is not None
        ]
        return rows


def _fid(
    real: np.ndarray, fake: np.ndarray, extractor: FeatureExtractor, resize_mode: str, sampling: str = ""
) -> FidValue:
    return fid_from_statistics(
        FeatureStatistics.of(real), FeatureStatistics.of(fake), extractor.name, resize_mode, sampling=sampling
    )


def class_matched_rows(real_labels: np.ndarray, fake_labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows of the synthetic set whose classes follow the real set's proportions (as many as the
    scarcest class allows), drawn at random within each class; every row when the real classes
    are balanced. A small, imbalanced real set against balanced synthetic classes shifts FID and
    KID by the class mix alone."""
    classes = np.unique(fake_labels)
    real_counts = np.array([(real_labels == k).sum() for k in classes])
    if len(set(real_counts.tolist())) <= 1 or (real_counts == 0).any():
        return np.arange(len(fake_labels))
    fake_rows = [np.nonzero(fake_labels == k)[0] for k in classes]
    scale = min(len(rows) / count for rows, count in zip(fake_rows, real_counts))
    picked = [rng.choice(rows, int(scale * count), replace=False) for rows, count in zip(fake_rows, real_counts)]
    return np.sort(np.concatenate(picked))


def score_synthetic(
    extractor: FeatureExtractor,
    real: LabelledSet,
    fake: LabelledSet,
    *,
    class_names: tuple[str, ...],
    rng: np.random.Generator,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 1,
) -> ExtractorScores:
    """FID overall and per class, IS of the synthetic set, KID and class agreement, all through
    ``extractor``; labels of both sets index ``class_names`` (every class of the dataset)."""
    started = time.perf_counter()
    resize_mode = extractor.resize_mode(int(fake.images.shape[1]))
    real_features, fake_features = extractor.features(real.images), extractor.features(fake.images)
    # Overall FID and KID compare class-matched sets; per-class FIDs are unaffected by the mix.
    matched = class_matched_rows(real.labels, fake.labels, rng)
    sampling = (
        "every synthetic image (the real classes are balanced)"
        if len(matched) == len(fake.labels)
        else f"{len(matched)} of {len(fake.labels)} synthetic images, class-matched to the real counts"
    )
    overall = _fid(real_features, fake_features[matched], extractor, resize_mode, sampling)
    per_class, skipped = {}, {}
    for index, name in enumerate(class_names):
        real_rows, fake_rows = real.labels == index, fake.labels == index
        if not fake_rows.any():
            continue  # a class without synthetic images (e.g. left out by its gates)
        if fake_rows.sum() < 2:
            raise ValueError(f"class {name!r} needs at least 2 synthetic images for FID, got {int(fake_rows.sum())}")
        if real_rows.sum() < 2:
            skipped[name] = f"{int(real_rows.sum())} real reference image(s); FID needs 2"
            continue
        per_class[name] = _fid(real_features[real_rows], fake_features[fake_rows], extractor, resize_mode)
    score = agreement = real_agreement = None
    if extractor.classify is not None:
        probabilities = extractor.probabilities(fake.images)  # (M, K) over the extractor's classes
        mean, std = inception_score(probabilities, is_splits)
        score = ScoreValue("is", mean, std, extractor.name, 0, len(fake.labels), f"{is_splits} split(s)")
        if probabilities.shape[1] == len(class_names):  # a domain classifier of these classes (not Inception's 1008)
            agreement = _agreement(
                "class_agreement",
                probabilities,
                fake.labels,
                extractor=extractor.name,
                num_real=0,
                num_fake=len(fake.labels),
            )
            real_agreement = _agreement(
                "real_class_agreement",
                extractor.probabilities(real.images),
                real.labels,
                extractor=extractor.name,
                num_real=len(real.labels),
                num_fake=0,
            )
    kid_mean, kid_std, size = kernel_inception_distance(
        real_features, fake_features[matched], rng, kid_subsets, kid_subset_size
    )
    detail = f"{kid_subsets} subsets of {size}; {sampling}"
    if size >= len(real.labels):
        detail += (
            f"; every subset holds all {len(real.labels)} real images, so the std reflects the synthetic draw only "
            "and understates the uncertainty"
        )
    kid = ScoreValue("kid", kid_mean, kid_std, extractor.name, len(real.labels), len(matched), detail)
    return ExtractorScores(
        extractor.name,
        resize_mode,
        overall,
        per_class,
        score,
        kid,
        time.perf_counter() - started,
        agreement,
        real_agreement,
        skipped,
    )


def _agreement(
    metric: str, probabilities: np.ndarray, labels: np.ndarray, *, extractor: str, num_real: int, num_fake: int
) -> ScoreValue:
    """Share of rows whose most probable class is their label (labels index the extractor's classes)."""
    correct = probabilities.argmax(axis=1) == labels
    chance = majority_rate(labels)  # a head that ignores the image answers one class
    return ScoreValue(metric, float(correct.mean()), 0.0, extractor, num_real, num_fake, f"chance {chance:.3f}")
