"""Augmentation: reaches the target, deterministic under a seed, only train images, never copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bio_assets.core.data.augment import OPERATIONS, AugmentParams, augment_class, augment_image
from bio_assets.core.data.demo_data import DEMO_CLASSES, render_cell_image
from bio_assets.core.io.records import ImageSet
from bio_assets.core.seeding import torch_generator


def cells(n: int, class_name: str = "Parabasal") -> ImageSet:
    index = DEMO_CLASSES.index(class_name)
    images = np.stack([render_cell_image(class_name, np.random.default_rng([1, index, i]), 32) for i in range(n)])
    return ImageSet(
        images, np.array([f"{i}.png" for i in range(n)]), np.array([f"h{index}-{i}" for i in range(n)]), class_name
    )


def test_every_class_reaches_the_target_and_is_balanced():
    params = AugmentParams(target_per_class=25)
    sizes = [
        len(augment_class(cells(n, c), params, torch_generator(0)))
        for n, c in ((5, "Parabasal"), (12, "Koilocytotic"), (24, "Metaplastic"))
    ]
    assert sizes == [25, 25, 25]


def test_originals_come_first_and_sources_are_used_evenly():
    train = cells(6)
    out = augment_class(train, AugmentParams(target_per_class=30), torch_generator(0))
    np.testing.assert_array_equal(out.images[:6], train.images)
    assert (out.source_index[:6] == -1).all()
    uses = np.bincount(out.source_index[6:], minlength=6)
    assert uses.tolist() == [4] * 6  # 24 augmented images over 6 sources, in shuffled rounds


def test_augmented_rows_carry_their_source_hash():
    train = cells(4)
    out = augment_class(train, AugmentParams(target_per_class=12), torch_generator(0))
    assert set(out.sha256.tolist()) == set(train.sha256.tolist())
    assert all(out.sha256[i] == train.sha256[out.source_index[i]] for i in range(4, 12))


def test_same_seed_same_bytes_other_seed_other_bytes():
    train = cells(5)
    params = AugmentParams(target_per_class=15)
    a = augment_class(train, params, torch_generator(7))
    b = augment_class(train, params, torch_generator(7))
    c = augment_class(train, params, torch_generator(8))
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images[5:], c.images[5:])


def test_no_augmented_image_is_a_copy_of_its_source():
    train = cells(5)
    out = augment_class(train, AugmentParams(target_per_class=40), torch_generator(0))
    for i in range(5, 40):
        assert not np.array_equal(out.images[i], train.images[out.source_index[i]])


def test_each_operation_is_drawn_about_half_the_time():
    image = torch.from_numpy(cells(1).images[0]).permute(2, 0, 1)
    generator = torch_generator(0)
    counts = dict.fromkeys(OPERATIONS, 0)
    for _ in range(300):
        for op in augment_image(image, AugmentParams(), generator)[1]:
            counts[op] += 1
    # p = 0.5 conditioned on at least one of six operations: expected 0.5 / (1 - 1/64) = 0.508
    for op, count in counts.items():
        assert 0.40 < count / 300 < 0.62, (op, count)


def test_flip_only_is_exact():
    image = torch.from_numpy(cells(1).images[0]).permute(2, 0, 1)
    params = AugmentParams(probability=1.0, max_rotation_deg=0, scale_range=(1, 1), max_shear_deg=0, elastic_alpha=0)
    out, ops = augment_image(image, params, torch_generator(0))
    assert set(ops) == set(OPERATIONS)
    torch.testing.assert_close(out, image.flip(-1).flip(-2))


def test_class_above_target_keeps_its_originals_unchanged():
    train = cells(10)
    out = augment_class(train, AugmentParams(target_per_class=5), torch_generator(0))
    np.testing.assert_array_equal(out.images, train.images)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="target_per_class"):
        AugmentParams(target_per_class=0)
    with pytest.raises(ValueError, match="probability"):
        AugmentParams(probability=1.5)


def test_rotated_in_corners_take_the_border_colour_without_a_seam():
    """A uniform image rotated stays uniform: no darker seam along the rotated-in corners."""
    image = torch.full((3, 32, 32), 200, dtype=torch.uint8)
    params = AugmentParams(
        probability=1.0, max_rotation_deg=45, scale_range=(0.7, 0.7), max_shear_deg=10, elastic_alpha=30
    )
    out, ops = augment_image(image, params, torch_generator(3))
    assert {"rotate", "scale", "shear", "elastic"} <= set(ops)
    assert out.min().item() == 200 and out.max().item() == 200
