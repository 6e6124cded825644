"""Per-class image-space comparisons for the report: colour-histogram KL (the source's
Table 4.5 protocol) and nearest-real-neighbour pixel metrics, (accuracy intervals: ``core.metrics.intervals``)."""

from __future__ import annotations

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
    *,
    train: np.ndarray | None = None,
) -> ClassComparison:
    """KL against ``real`` on ``per_side`` + ``per_side`` images drawn with ``rng`` (all when fewer).

    Pixel metrics on every synthetic image against its nearest image of ``train`` (the GAN's
    training images, where copies would come from; default ``real``)."""
    real_kl, fake_kl = sample_for_kl(real, per_side, rng), sample_for_kl(synthetic, per_side, rng)
    scores = nearest_neighbour_scores(synthetic, real if train is None else train)
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
