"""Fréchet Inception Distance on any feature extractor's features, in float64.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).
The trace of the matrix square root is computed as Tr((A S_2 A)^(1/2)) with A = S_1^(1/2):
``A S_2 A`` is symmetric positive semi-definite and has the same eigenvalues as ``S_1 S_2``,
so a symmetric eigendecomposition gives it stably, also for singular covariances (fewer
samples than feature dimensions), where ``scipy.linalg.sqrtm(S_1 S_2)`` needs an offset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, ddof 1) of ``count`` feature vectors."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStatistics:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 feature vectors of shape (N, D), got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("features contain NaN or inf; the extractor or the images are broken")
        return cls(
            features.mean(axis=0),
            np.cov(features, rowvar=False, ddof=1).reshape(features.shape[1], features.shape[1]),
            features.shape[0],
        )


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; round-off negatives clipped to 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mean_1: np.ndarray, cov_1: np.ndarray, mean_2: np.ndarray, cov_2: np.ndarray) -> float:
    """||mu_1 - mu_2||^2 + Tr(S_1) + Tr(S_2) - 2 Tr((S_1 S_2)^(1/2)), float64, never negative."""
    mean_1, mean_2 = np.asarray(mean_1, np.float64), np.asarray(mean_2, np.float64)
    cov_1, cov_2 = np.atleast_2d(np.asarray(cov_1, np.float64)), np.atleast_2d(np.asarray(cov_2, np.float64))
    if mean_1.shape != mean_2.shape or cov_1.shape != cov_2.shape or cov_1.shape != (mean_1.size, mean_1.size):
        raise ValueError(
            f"FID needs means (D,) and covariances (D, D) of one D; got {mean_1.shape}, {cov_1.shape}, "
            f"{mean_2.shape}, {cov_2.shape}"
        )
    root_1 = _psd_sqrt(cov_1)
    middle = root_1 @ cov_2 @ root_1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    distance = float(((mean_1 - mean_2) ** 2).sum() + np.trace(cov_1) + np.trace(cov_2) - 2.0 * trace_sqrt)
    return max(distance, 0.0)


@dataclass(frozen=True)
class FidValue:
    """One FID number with its provenance: which features, how many images, how they were resized."""

    value: float
    extractor: str
    num_real: int
    num_fake: int
    resize_mode: str
    # How the synthetic images' classes were drawn against the reference's, e.g. "class-matched to
    # the real counts [30, 9, 12]": a real set of other class proportions shifts the FID by itself.
    sampling: str = ""

    @property
    def name(self) -> str:
        return f"fid_{self.num_fake}_{self.extractor}"

    def to_json(self) -> dict:
        return {**asdict(self), "name": self.name}


def fid_from_statistics(
    real: FeatureStatistics, fake: FeatureStatistics, extractor: str, resize_mode: str, *, sampling: str = ""
) -> FidValue:
    return FidValue(
        frechet_distance(real.mean, real.covariance, fake.mean, fake.covariance),
        extractor,
        real.count,
        fake.count,
        resize_mode,
        sampling,
    )
