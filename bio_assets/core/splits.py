"""Leakage-free train / validation / test splits, made per class before any augmentation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from bio_assets.core.records import ImageSet, ImageSplits


@dataclass(frozen=True)
class SplitParams:
    train_fraction: float = 0.70
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        parts = (self.train_fraction, self.val_fraction, self.test_fraction)
        if any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must be non-negative and sum to 1, got {parts}")
        if self.train_fraction == 0:
            raise ValueError("train_fraction must be above 0")


def split_counts(n: int, params: SplitParams) -> tuple[int, int, int]:
    """Numbers of (train, val, test) images for a class of ``n``.

    Rounded to the nearest count, but with at least 3 images every split with a
    positive fraction gets one image, and train always keeps the rest.
    """
    if n <= 0:
        raise ValueError(f"cannot split a class with {n} images")
    n_val = round(n * params.val_fraction)
    n_test = round(n * params.test_fraction)
    if n >= 3:
        n_val = max(n_val, 1 if params.val_fraction > 0 else 0)
        n_test = max(n_test, 1 if params.test_fraction > 0 else 0)
    while n - n_val - n_test < 1:
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def split_rank(sha256: np.ndarray, seed: int) -> np.ndarray:
    """Order images by a seeded hash of their content.

    The order depends only on the file contents and the seed, not on file names or
    listing order, so adding images to a class moves few existing images between
    splits and identical files always land together.
    """
    keys = [hashlib.sha256(f"{seed}:{digest}".encode()).hexdigest() for digest in sha256]
    return np.argsort(np.array(keys), kind="stable")


def split_images(images: ImageSet, params: SplitParams) -> ImageSplits:
    """Split one class's original images into disjoint train / val / test sets."""
    n_train, n_val, _ = split_counts(len(images), params)
    order = split_rank(images.sha256, params.seed)
    # Test first, then validation: the tail of the ranking is the training set.
    n_test = len(images) - n_train - n_val
    test_rows = np.sort(order[:n_test])
    val_rows = np.sort(order[n_test : n_test + n_val])
    train_rows = np.sort(order[n_test + n_val :])
    return ImageSplits(
        train=images.take(train_rows),
        val=images.take(val_rows),
        test=images.take(test_rows),
        seed=params.seed,
    )
