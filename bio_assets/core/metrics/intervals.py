"""Intervals for accuracies measured over several training seeds on one test set.

A result ``correct[s, i]`` (1 where seed s's model classifies test image i correctly) varies with
the training seed and with the draw of test images. The mean over both has, in a two-way random
effects model, the variance ``var(seed means) / S + var(image means) / N`` estimated from the
per-seed means (over images) and the per-image means (over seeds); the interaction enters both
terms, so the estimate errs on the wide side. The interval is Student's t with Welch-Satterthwaite
degrees of freedom. With one seed the seed term cannot be estimated: the interval then covers the
test draw only, and says so (``seeds``), and no verdict may rest on it (``VERDICT_SEEDS``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

# The fewest seeds whose spread an interval can carry into a printed verdict.
VERDICT_SEEDS = 3


@dataclass(frozen=True)
class Interval:
    value: float  # mean over seeds and images
    low: float
    high: float
    level: float
    seeds: int
    images: int
    seed_std: float  # std over seeds of the per-seed value (0 with one seed)
    degrees_of_freedom: float

    @property
    def carries_seed_variance(self) -> bool:
        return self.seeds >= VERDICT_SEEDS

    def describe(self) -> str:
        """How the interval was made, for a report or metadata."""
        if self.images < 2:
            return f"{self.level:.0%} interval over {self.seeds} seed(s) and 1 image: too few images to measure"
        if self.seeds < 2:
            return (
                f"{self.level:.0%} t interval over {self.images} test images; 1 seed, so it leaves out the "
                "variation between trainings"
            )
        return (
            f"{self.level:.0%} t interval over {self.seeds} seeds and {self.images} test images (seed std "
            f"{self.seed_std:.3f}, {self.degrees_of_freedom:.1f} degrees of freedom)"
        )

    def to_json(self) -> dict:
        return {**asdict(self), "method": self.describe()}


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ValueError(f"{name} must be (seeds, images) with at least 1 image, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} holds non-finite values")
    return matrix


def seed_image_interval(
    values: np.ndarray, *, level: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0)
) -> Interval:
    """The mean of ``values`` ``(S, N)`` (seeds x test images; ``(N,)`` is one seed) with its
    interval over both seeds and images, clipped to ``bounds``."""
    matrix = _as_matrix(values, "values")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    seeds, images = matrix.shape
    seed_means, image_means = matrix.mean(axis=1), matrix.mean(axis=0)
    # A term that one seed or one image cannot estimate is left out (and ``describe`` says so).
    seed_term = seed_means.var(ddof=1) / seeds if seeds > 1 else 0.0
    image_term = image_means.var(ddof=1) / images if images > 1 else 0.0
    total = seed_term + image_term
    value = float(matrix.mean())
    if total == 0:
        degrees = float("inf")
        half = 0.0
    else:
        denominator = (seed_term**2 / (seeds - 1) if seeds > 1 else 0.0) + (
            image_term**2 / (images - 1) if images > 1 else 0.0
        )
        degrees = total**2 / denominator
        half = float(stats.t.ppf(0.5 + level / 2, degrees)) * math.sqrt(total)
    return Interval(
        value=value,
        low=max(bounds[0], value - half),
        high=min(bounds[1], value + half),
        level=level,
        seeds=seeds,
        images=images,
        seed_std=float(seed_means.std(ddof=1)) if seeds > 1 else 0.0,
        degrees_of_freedom=float(degrees),
    )


def difference_interval(first: np.ndarray, second: np.ndarray, *, level: float = 0.95) -> Interval:
    """``first`` minus ``second``, both ``(S, N)`` correctness over the same seeds (paired: seed s of
    each starts from the same initialization) and the same test images, with its interval."""
    a, b = _as_matrix(first, "first"), _as_matrix(second, "second")
    if a.shape != b.shape:
        raise ValueError(f"paired results need equal shapes, got {a.shape} and {b.shape}")
    return seed_image_interval(a - b, level=level, bounds=(-1.0, 1.0))


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``correct / total``."""
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct}/{total}")
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    # At 0 or total correct the bound is exactly 0 or 1; rounding left it 1e-16 short, below the value itself.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    return low, 1.0 if correct == total else min(1.0, centre + half)


def accuracy_interval(correct: np.ndarray, *, level: float = 0.95) -> Interval:
    """The accuracy of ``correct`` ``(S, N)`` with ``seed_image_interval``'s interval, widened to
    hold the Wilson interval of the mean over the N images: where every seed scores every image
    alike (all right, say) the t interval has no width, the test draw still has."""
    interval = seed_image_interval(correct, level=level)
    z = float(stats.norm.ppf(0.5 + level / 2))
    low, high = wilson_interval(round(interval.value * interval.images), interval.images, z)
    return Interval(**{**asdict(interval), "low": min(interval.low, low), "high": max(interval.high, high)})
