"""Splits: known counts, disjoint by content hash, deterministic, stable when images are added."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bio_assets.core.data.splits import SplitParams, split_counts, split_images
from bio_assets.core.io.records import ImageSet


def make_set(n: int, offset: int = 0, class_name: str = "A") -> ImageSet:
    images = np.zeros((n, 4, 4, 3), np.uint8)
    names = np.array([f"f{i + offset}.png" for i in range(n)])
    hashes = np.array([hashlib.sha256(f"content {i + offset}".encode()).hexdigest() for i in range(n)])
    return ImageSet(images, names, hashes, class_name)


@pytest.mark.parametrize(
    "n, expected",
    [(60, (42, 9, 9)), (100, (70, 15, 15)), (3, (1, 1, 1)), (4, (2, 1, 1)), (2, (2, 0, 0)), (1, (1, 0, 0))],
)
def test_split_counts_known_answers(n, expected):
    assert split_counts(n, SplitParams()) == expected


def test_paper_split_80_20():
    assert split_counts(100, SplitParams(0.8, 0.0, 0.2)) == (80, 0, 20)


def test_invalid_fractions_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        SplitParams(0.7, 0.2, 0.2)


def test_splits_are_disjoint_and_cover_every_image():
    images = make_set(57)
    splits = split_images(images, SplitParams(seed=3))
    names = [set(s.file_names.tolist()) for s in (splits.train, splits.val, splits.test)]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert set().union(*names) == set(images.file_names.tolist())


def test_same_seed_same_split_regardless_of_file_order():
    images = make_set(40)
    shuffled = images.take(np.random.default_rng(0).permutation(40))
    a, b = split_images(images, SplitParams(seed=1)), split_images(shuffled, SplitParams(seed=1))
    assert set(a.test.file_names.tolist()) == set(b.test.file_names.tolist())
    assert set(a.val.file_names.tolist()) == set(b.val.file_names.tolist())


def test_seed_changes_the_split():
    images = make_set(40)
    a, b = split_images(images, SplitParams(seed=1)), split_images(images, SplitParams(seed=2))
    assert set(a.test.file_names.tolist()) != set(b.test.file_names.tolist())


def test_adding_images_moves_few_existing_ones():
    before = split_images(make_set(100), SplitParams())
    grown = make_set(100)
    extra = make_set(10, offset=100)
    after = split_images(
        ImageSet(
            np.concatenate([grown.images, extra.images]),
            np.concatenate([grown.file_names, extra.file_names]),
            np.concatenate([grown.sha256, extra.sha256]),
            "A",
        ),
        SplitParams(),
    )
    where_before = {n: s for s in ("train", "val", "test") for n in getattr(before, s).file_names.tolist()}
    where_after = {n: s for s in ("train", "val", "test") for n in getattr(after, s).file_names.tolist()}
    moved = sum(where_before[n] != where_after[n] for n in where_before)
    assert moved <= 4, f"{moved} of 100 existing images changed split after adding 10"


def test_stratified_every_class_gets_the_same_proportions():
    for n, class_name in ((60, "A"), (20, "B"), (9, "C")):
        splits = split_images(make_set(n, class_name=class_name), SplitParams())
        counts = (len(splits.train), len(splits.val), len(splits.test))
        assert counts == split_counts(n, SplitParams())
        assert abs(counts[0] / n - 0.70) <= 0.5 / n + 0.12


def test_cells_of_one_slide_stay_in_one_split():
    """SIPaKMeD-style names <slide>_<cell>.bmp: every slide's cells land together."""
    n = 60
    names = np.array([f"CROPPED/{slide:03d}_{cell:02d}.bmp" for slide in range(15) for cell in range(4)])
    images = ImageSet(
        np.zeros((n, 4, 4, 3), np.uint8), names, np.array([hashlib.sha256(x.encode()).hexdigest() for x in names]), "A"
    )
    splits = split_images(images, SplitParams(seed=2), group_pattern=r"^(\d+)_")
    slides = [
        {str(name).split("/")[-1].split("_")[0] for name in getattr(splits, s).file_names}
        for s in ("train", "val", "test")
    ]
    assert not (slides[0] & slides[1]) and not (slides[0] & slides[2]) and not (slides[1] & slides[2])
    assert (
        len(splits.test) >= 9 and len(splits.val) >= 9 and len(splits.train) > 0
    )  # filled to at least the counts, by whole slides
    assert len(splits.train) + len(splits.val) + len(splits.test) == n


def test_one_huge_group_still_leaves_a_train_split():
    names = np.array([f"001_{i}.bmp" for i in range(5)])
    images = ImageSet(np.zeros((5, 4, 4, 3), np.uint8), names, np.array([f"h{i}" for i in range(5)]), "A")
    splits = split_images(images, SplitParams(), group_pattern=r"^(\d+)_")
    assert len(splits.train) == 5 and len(splits.val) == len(splits.test) == 0


def test_bad_group_patterns_are_explained():
    with pytest.raises(ValueError, match="needs a capture group"):
        split_images(make_set(5), SplitParams(), group_pattern=r"^\d+_")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        split_images(make_set(5), SplitParams(), group_pattern="(")
