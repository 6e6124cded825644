"""Distribution scores of synthetic images from a feature extractor: Inception Score and KID.

IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction over the set: 1 when every image
gets the same prediction, K when K classes are predicted with certainty equally often.
KID = unbiased MMD^2 between feature sets with the cubic polynomial kernel
k(x, y) = (x.y / D + 1)^3, averaged over random subsets (Binkowski et al., 2018).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.special import xlogy


def _poly_mmd():
    """torchmetrics' polynomial-kernel MMD; torchmetrics takes seconds to import, so only here."""
    from torchmetrics.image.kid import poly_mmd

    return poly_mmd


@dataclass(frozen=True)
class ScoreValue:
    """A mean ± std with what produced it: metric, extractor, sample counts, subsets, resize mode."""

    metric: str
    value: float
    std: float
    extractor: str
    num_real: int
    num_fake: int
    detail: str = ""

    @property
    def name(self) -> str:
        return f"{self.metric}_{self.num_fake}_{self.extractor}"

    def to_json(self) -> dict:
        return {**asdict(self), "name": self.name}


def _check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(f"IS needs class probabilities of shape (N, K) with N >= 1, got {probabilities.shape}")
    if (
        not np.isfinite(probabilities).all()
        or (probabilities < 0).any()
        or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    ):
        raise ValueError("IS needs rows of non-negative probabilities summing to 1")
    return probabilities


def inception_score(probabilities: np.ndarray, splits: int = 1) -> tuple[float, float]:
    """(mean, std) of exp(mean_x KL(p(y|x) || p(y))) over ``splits`` consecutive chunks of ``(N, K)``."""
    probabilities = _check_probabilities(probabilities)
    if not 1 <= splits <= len(probabilities):
        raise ValueError(f"splits must be in 1..{len(probabilities)}, got {splits}")
    scores = []
    for chunk in np.array_split(probabilities, splits):
        marginal = chunk.mean(axis=0, keepdims=True)  # (1, K)
        # xlogy(0, 0) = 0: classes a row gives no mass contribute nothing.
        kl = (xlogy(chunk, chunk) - xlogy(chunk, marginal)).sum(axis=1)  # (n,)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def kid_subset_size(num_real: int, num_fake: int, requested: int) -> int:
    """The subset size: ``requested``, shrunk to the smaller set for small classes (at least 2)."""
    size = min(requested, num_real, num_fake)
    if size < 2:
        raise ValueError(f"KID needs at least 2 real and 2 synthetic feature vectors, got {num_real} and {num_fake}")
    return size


def kernel_inception_distance(
    real: np.ndarray, fake: np.ndarray, rng: np.random.Generator, subsets: int = 100, subset_size: int = 1000
) -> tuple[float, float, int]:
    """(mean, std, subset size used) of the unbiased polynomial-kernel MMD^2 over ``subsets``
    random subsets of real ``(N, D)`` and synthetic ``(M, D)`` features, drawn without replacement."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"KID needs features (N, D) and (M, D) of one D, got {real.shape} and {fake.shape}")
    size = kid_subset_size(len(real), len(fake), subset_size)
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    values = []
    for _ in range(subsets):
        real_rows = torch.from_numpy(rng.choice(len(real), size, replace=False))
        fake_rows = torch.from_numpy(rng.choice(len(fake), size, replace=False))
        values.append(float(_poly_mmd()(real_t[real_rows], fake_t[fake_rows], degree=3, gamma=None, coef=1.0)))
    return float(np.mean(values)), float(np.std(values)), size
