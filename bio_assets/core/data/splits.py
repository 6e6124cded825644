"""Leakage-free train / validation / test splits, made per class before any augmentation."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from bio_assets.core.io.records import ImageSet, ImageSplits


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


def source_groups(file_names: np.ndarray, sha256: np.ndarray, group_pattern: str) -> np.ndarray:
    """Group key of each image: the first capture group of ``group_pattern`` searched in its
    file name (e.g. the slide a cell was cropped from), or its own content hash when the
    pattern is empty or does not match."""
    if not group_pattern:
        return np.asarray(sha256)
    rule = compile_group_pattern(group_pattern)
    keys = []
    for name, digest in zip(file_names, sha256):
        match = rule.search(str(name).rsplit("/", 1)[-1])
        keys.append(f"group:{match.group(1)}" if match else str(digest))
    return np.array(keys)


def compile_group_pattern(group_pattern: str) -> re.Pattern:
    try:
        rule = re.compile(group_pattern)
    except re.error as err:
        raise ValueError(f"group_pattern {group_pattern!r} is not a valid regular expression: {err}") from None
    if rule.groups < 1:
        raise ValueError(f"group_pattern {group_pattern!r} needs a capture group, e.g. '^(\\d+)_' for the slide number")
    return rule


def split_images(images: ImageSet, params: SplitParams, group_pattern: str = "") -> ImageSplits:
    """Split one class's original images into disjoint train / val / test sets.

    Whole groups (see ``source_groups``) go to one split, so cells cropped from one slide
    never sit on both sides; test and validation are filled group by group in seeded
    order up to their counts, so with groups the counts are approximate.
    """
    n_train, n_val, _ = split_counts(len(images), params)
    n_test = len(images) - n_train - n_val
    groups = source_groups(images.file_names, images.sha256, group_pattern)
    unique, inverse = np.unique(groups, return_inverse=True)
    assignment = np.empty(len(unique), dtype=np.int64)  # 0 test, 1 val, 2 train
    filled = [0, 0]
    ranking = split_rank(unique, params.seed)
    assignment[ranking[-1]] = 2  # the last-ranked group always trains: train is never empty
    for group in ranking[:-1]:
        size = int((inverse == group).sum())
        # Test first, then validation: the tail of the ranking is the training set.
        target = 0 if filled[0] < n_test else (1 if filled[1] < n_val else 2)
        assignment[group] = target
        if target < 2:
            filled[target] += size
    row_split = assignment[inverse]
    test_rows, val_rows, train_rows = (np.nonzero(row_split == k)[0] for k in range(3))
    return ImageSplits(
        train=images.take(train_rows),
        val=images.take(val_rows),
        test=images.take(test_rows),
        seed=params.seed,
    )
