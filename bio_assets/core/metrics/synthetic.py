"""The source's Table 1.7 for one feature extractor: FID (overall and per class), Inception
Score and KID of synthetic against real images, with the time each extractor took."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from bio_assets.core.metrics.extractors import FeatureExtractor
from bio_assets.core.metrics.fid import FeatureStatistics, FidValue, fid_from_statistics
from bio_assets.core.metrics.quality import ScoreValue, inception_score, kernel_inception_distance


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

    def rows(self) -> list[dict]:
        """One row per number, each with its full provenance."""
        rows = [{**self.fid.to_json(), "metric": "fid", "class": "all"}]
        rows += [{**value.to_json(), "metric": "fid", "class": name} for name, value in self.class_fid.items()]
        rows += [{**score.to_json(), "class": "all", "resize_mode": self.resize_mode} for score in (self.inception_score, self.kid) if score is not None]
        return rows


def _fid(real: np.ndarray, fake: np.ndarray, extractor: FeatureExtractor, resize_mode: str) -> FidValue:
    return fid_from_statistics(FeatureStatistics.of(real), FeatureStatistics.of(fake), extractor.name, resize_mode)


def score_synthetic(
    extractor: FeatureExtractor, real: LabelledSet, fake: LabelledSet, class_names: tuple[str, ...], rng: np.random.Generator,
    kid_subsets: int = 100, kid_subset_size: int = 1000, is_splits: int = 1,
) -> ExtractorScores:
    """FID overall and per class, IS of the synthetic set and KID, all through ``extractor``."""
    started = time.perf_counter()
    resize_mode = extractor.resize_mode(int(fake.images.shape[1]))
    real_features, fake_features = extractor.features(real.images), extractor.features(fake.images)
    overall = _fid(real_features, fake_features, extractor, resize_mode)
    per_class = {}
    for index, name in enumerate(class_names):
        real_rows, fake_rows = real.labels == index, fake.labels == index
        if real_rows.sum() < 2 or fake_rows.sum() < 2:
            raise ValueError(f"class {name!r} needs at least 2 real and 2 synthetic images for FID, got {int(real_rows.sum())} and {int(fake_rows.sum())}")
        per_class[name] = _fid(real_features[real_rows], fake_features[fake_rows], extractor, resize_mode)
    score = None
    if extractor.classify is not None:
        mean, std = inception_score(extractor.probabilities(fake.images), is_splits)
        score = ScoreValue("is", mean, std, extractor.name, 0, len(fake.labels), f"{is_splits} split(s)")
    kid_mean, kid_std, size = kernel_inception_distance(real_features, fake_features, rng, kid_subsets, kid_subset_size)
    kid = ScoreValue("kid", kid_mean, kid_std, extractor.name, len(real.labels), len(fake.labels), f"{kid_subsets} subsets of {size}")
    return ExtractorScores(extractor.name, resize_mode, overall, per_class, score, kid, time.perf_counter() - started)
