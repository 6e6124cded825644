"""Quality gates of a synthetic class: memorization of training images and leakage of held-out
images, both judged in a feature space against the real images' own spacing.

Distances are Euclidean between feature vectors ``(N, D)``. The scale is the median distance
from each real training image to its nearest other real training image, so one threshold
(a ratio) serves every extractor: a synthetic image at ratio 0 is a copy.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def nearest_distances(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each query's nearest reference: shapes ``(M,)``, ``(M,)``."""
    if len(references) == 0:
        raise ValueError("nearest-neighbour distances need at least one reference vector")
    distances = torch.cdist(
        torch.from_numpy(np.asarray(queries, np.float64)), torch.from_numpy(np.asarray(references, np.float64))
    )  # (M, N)
    best = distances.min(dim=1)
    return best.values.numpy(), best.indices.numpy()


def typical_spacing(references: np.ndarray) -> float:
    """Median distance from each reference to its nearest other reference (> 0)."""
    references = np.asarray(references, np.float64)
    if len(references) < 2:
        raise ValueError(f"the spacing of real images needs at least 2 of them, got {len(references)}")
    distances = torch.cdist(torch.from_numpy(references), torch.from_numpy(references))
    distances.fill_diagonal_(float("inf"))
    spacing = float(distances.min(dim=1).values.median())
    if spacing <= 0:
        raise ValueError("real training images include exact feature duplicates; their spacing is 0")
    return spacing


def memorization(fake: np.ndarray, train: np.ndarray, min_ratio: float) -> dict:
    """Passes when every synthetic image is at least ``min_ratio`` x the typical spacing from every training image."""
    spacing = typical_spacing(train)
    distances, nearest = nearest_distances(fake, train)
    ratios = distances / spacing
    too_close = np.flatnonzero(ratios < min_ratio)
    return {
        "passed": not len(too_close),
        "num_too_close": int(len(too_close)),
        "min_distance_ratio": float(ratios.min()),
        "median_distance_ratio": float(np.median(ratios)),
        "threshold": min_ratio,
        "real_spacing": spacing,
        "too_close": [int(i) for i in too_close[:20]],
        "nearest_train": [int(nearest[i]) for i in too_close[:20]],
    }


def pixel_hashes(images: np.ndarray) -> list[str]:
    """SHA-256 of each uint8 image's pixel bytes: equal pixels, equal hash."""
    return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images]


def held_out_leaks(
    fake_images: np.ndarray,
    fake: np.ndarray,
    held_images: np.ndarray,
    held: np.ndarray,
    spacing: float,
    min_ratio: float,
) -> dict:
    """Passes when no synthetic image equals a validation/test image pixel for pixel (at the
    synthetic size) or lies within ``min_ratio`` x ``spacing`` of one in feature space."""
    if len(held_images) == 0:
        return {
            "passed": True,
            "num_exact": 0,
            "num_near": 0,
            "num_held_out": 0,
            "min_distance_ratio": float("inf"),
            "threshold": min_ratio,
        }
    held_hashes = set(pixel_hashes(held_images))
    exact = [i for i, digest in enumerate(pixel_hashes(fake_images)) if digest in held_hashes]
    ratios = nearest_distances(fake, held)[0] / spacing
    near = np.flatnonzero(ratios < min_ratio)
    return {
        "passed": not exact and not len(near),
        "num_exact": len(exact),
        "num_near": int(len(near)),
        "num_held_out": len(held_images),
        "min_distance_ratio": float(ratios.min()),
        "threshold": min_ratio,
        "exact": exact[:20],
        "near": [int(i) for i in near[:20]],
    }
