"""Per-class image-space comparisons for the report: colour-histogram KL (the source's
Table 4.5 protocol) and nearest-real-neighbour pixel metrics, plus accuracy intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bio_assets.core.metrics.pixels import color_histogram, histogram_kl, nearest_neighbour_scores, sample_for_kl
from bio_assets.core.reporting.source import KL_IMAGES_PER_SIDE


@dataclass(frozen=True)
class ClassComparison:
    class_name: str
    kl: float
    kl_real: int  # images per side actually used (150, or all when fewer)
    kl_synthetic: int
    real_histogram: np.ndarray  # (3, 256)
    synthetic_histogram: np.ndarray  # (3, 256)
    pixel: dict[str, tuple[float, float]]  # mse / rmse / psnr / ssim -> (mean, std)
    exact_copies: int  # synthetic images identical to a real one (PSNR infinite)


def compare_class(
    class_name: str,
    real: np.ndarray,
    synthetic: np.ndarray,
    rng: np.random.Generator,
    per_side: int = KL_IMAGES_PER_SIDE,
) -> ClassComparison:
    """KL on ``per_side`` + ``per_side`` images drawn with ``rng`` (all when fewer).

    Pixel metrics on every synthetic image."""
    real_kl, fake_kl = sample_for_kl(real, per_side, rng), sample_for_kl(synthetic, per_side, rng)
    scores = nearest_neighbour_scores(synthetic, real)
    finite = np.isfinite(scores.psnr)
    pixel = scores.summary()
    pixel["psnr"] = (
        (float(scores.psnr[finite].mean()), float(scores.psnr[finite].std())) if finite.any() else (float("inf"), 0.0)
    )
    return ClassComparison(
        class_name,
        histogram_kl(real_kl, fake_kl),
        len(real_kl),
        len(fake_kl),
        color_histogram(real_kl),
        color_histogram(fake_kl),
        pixel,
        int((~finite).sum()),
    )


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
