"""Image-space comparisons of synthetic with real images: per-class colour-histogram KL
divergence (the source's Table 4.5 protocol) and MSE / RMSE / PSNR / SSIM to the nearest
real neighbour.

All images are uint8 ``(N, H, W, 3)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KL_EPSILON = 1e-10  # added to every bin so an empty synthetic bin gives a large, finite KL


def _check_images(images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"{what} must be non-empty uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


def color_histogram(images: np.ndarray, bins: int = 256) -> np.ndarray:
    """Normalised per-channel histograms ``(3, bins)`` of every pixel of the set; each row sums to 1."""
    images = _check_images(images, "images")
    if not 1 <= bins <= 256:
        raise ValueError(f"bins must be in 1..256, got {bins}")
    edges = np.linspace(0, 256, bins + 1)
    rows = [np.histogram(images[..., channel], bins=edges)[0].astype(np.float64) for channel in range(3)]
    histogram = np.stack(rows)
    return histogram / histogram.sum(axis=1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray, epsilon: float = KL_EPSILON) -> float:
    """sum_i p_i log(p_i / q_i) of two histograms over the same bins, both smoothed by ``epsilon``."""
    p, q = np.asarray(p, np.float64) + epsilon, np.asarray(q, np.float64) + epsilon
    if p.shape != q.shape:
        raise ValueError(f"histograms must share their bins, got {p.shape} and {q.shape}")
    p, q = p / p.sum(), q / q.sum()
    return float((p * np.log(p / q)).sum())


def sample_for_kl(images: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` images drawn without replacement, or all of them when there are fewer."""
    if len(images) <= count:
        return images
    return images[np.sort(rng.choice(len(images), count, replace=False))]


def histogram_kl(real: np.ndarray, synthetic: np.ndarray, bins: int = 256) -> float:
    """Mean over R, G, B of KL(real histogram || synthetic histogram)."""
    real_h, fake_h = color_histogram(real, bins), color_histogram(synthetic, bins)
    return float(np.mean([kl_divergence(real_h[c], fake_h[c]) for c in range(3)]))


@dataclass(frozen=True)
class NearestNeighbourScores:
    """Per synthetic image, against its nearest real image by pixel MSE: arrays of shape ``(M,)``."""

    nearest: np.ndarray
    mse: np.ndarray
    rmse: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray

    def summary(self) -> dict[str, tuple[float, float]]:
        return {
            name: (float(getattr(self, name).mean()), float(getattr(self, name).std()))
            for name in ("mse", "rmse", "psnr", "ssim")
        }


def _unit_float(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float64 (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).double().div(255.0)


def nearest_neighbour_scores(synthetic: np.ndarray, real: np.ndarray, batch_size: int = 256) -> NearestNeighbourScores:
    """MSE, RMSE, PSNR (dB, data range 1) and SSIM (Gaussian 11x11, sigma 1.5) of each synthetic
    image against the real image with the smallest MSE; both sets at one size, values in [0, 1]."""
    synthetic, real = _check_images(synthetic, "synthetic images"), _check_images(real, "real images")
    if synthetic.shape[1:] != real.shape[1:]:
        raise ValueError(f"synthetic {synthetic.shape[1:]} and real {real.shape[1:]} images must have one size")
    real_flat = _unit_float(real).flatten(1)  # (N, P)
    nearest, mse = [], []
    for start in range(0, len(synthetic), batch_size):
        fake_flat = _unit_float(synthetic[start : start + batch_size]).flatten(1)  # (B, P)
        distances = torch.cdist(fake_flat, real_flat).pow(2) / fake_flat.shape[1]  # (B, N) mean squared error
        best = distances.min(dim=1)
        nearest.append(best.indices)
        mse.append(best.values.clamp(min=0))
    nearest_t, mse_t = torch.cat(nearest), torch.cat(mse)
    fake_t, matched = _unit_float(synthetic), _unit_float(real[nearest_t.numpy()])
    # torchmetrics takes seconds to import: only where pixel metrics are computed.
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    psnr = peak_signal_noise_ratio(fake_t, matched, data_range=1.0, reduction="none", dim=(1, 2, 3))
    # SSIM in float32: its Gaussian filtering is 30x slower in float64 (36 s against 1.1 s for 512
    # images of 64 px) and float32 keeps it to ~1e-6.
    ssim = structural_similarity_index_measure(fake_t.float(), matched.float(), data_range=1.0, reduction="none")
    return NearestNeighbourScores(nearest_t.numpy(), mse_t.numpy(), mse_t.sqrt().numpy(), psnr.numpy(), ssim.numpy())
