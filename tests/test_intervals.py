"""Intervals over seeds and test images, chance levels and balanced accuracy: known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bio_assets.core.metrics.classification import balanced_accuracy, majority_rate
from bio_assets.core.metrics.intervals import (
    VERDICT_SEEDS,
    accuracy_interval,
    difference_interval,
    seed_image_interval,
    wilson_interval,
)


def test_with_identical_seeds_the_interval_is_the_t_interval_over_images():
    rng = np.random.default_rng(0)
    row = (rng.random(40) < 0.7).astype(float)
    interval = seed_image_interval(np.stack([row, row, row]))
    half = stats.t.ppf(0.975, 39) * row.std(ddof=1) / np.sqrt(40)
    assert interval.value == pytest.approx(row.mean())
    assert (interval.low, interval.high) == pytest.approx((row.mean() - half, row.mean() + half))
    assert interval.degrees_of_freedom == pytest.approx(39) and interval.seed_std == pytest.approx(0, abs=1e-12)


def test_the_seed_and_image_terms_add_with_welch_satterthwaite_degrees_of_freedom():
    per_seed = np.array([0.2, 0.6, 1.0])
    matrix = (np.arange(10)[None, :] < per_seed[:, None] * 10).astype(float)  # 2, 6 and 10 of 10 correct
    interval = seed_image_interval(matrix)
    seed_means = matrix.mean(axis=1)
    image_means = matrix.mean(axis=0)
    seed_term, image_term = seed_means.var(ddof=1) / 3, image_means.var(ddof=1) / 10
    degrees = (seed_term + image_term) ** 2 / (seed_term**2 / 2 + image_term**2 / 9)
    half = stats.t.ppf(0.975, degrees) * np.sqrt(seed_term + image_term)
    assert interval.value == pytest.approx(0.6) and interval.seed_std == pytest.approx(0.4)
    assert interval.degrees_of_freedom == pytest.approx(degrees)
    assert interval.low == pytest.approx(max(0.0, 0.6 - half)) and interval.high == pytest.approx(min(1.0, 0.6 + half))
    # The seeds' spread widens it well beyond one seed's interval over the same images.
    assert interval.high - interval.low > seed_image_interval(matrix[1]).high - seed_image_interval(matrix[1]).low


def test_seed_variance_turns_a_confident_gain_into_an_open_question():
    # The control swings between seeds while the extended model is steady: per-seed gains -0.1, +0.2, +0.1.
    rng = np.random.default_rng(3)
    images = 200
    extended = np.stack([(rng.random(images) < 0.8).astype(float) for _ in range(3)])
    control = extended.copy()
    for seed, flips in enumerate((-20, 40, 20)):  # control wrong on `flips` more images (negative: fewer)
        right = np.flatnonzero(control[seed] == (1 if flips > 0 else 0))[: abs(flips)]
        control[seed, right] = 0 if flips > 0 else 1
    gain = difference_interval(extended, control)
    assert gain.value == pytest.approx(np.mean([-0.1, 0.2, 0.1]))
    assert gain.low < 0 < gain.high  # three seeds that disagree: no verdict either way
    # Averaging the seeds first and resampling images only (the old bootstrap) would exclude zero.
    image_only = seed_image_interval(extended.mean(0) - control.mean(0), bounds=(-1, 1))
    assert image_only.low > 0 and image_only.seeds == 1 and not image_only.carries_seed_variance
    assert gain.carries_seed_variance and VERDICT_SEEDS == 3
    assert "3 seeds and 200 test images" in gain.describe()


def test_equal_models_have_a_zero_gain_and_a_perfect_score_keeps_its_wilson_width():
    rng = np.random.default_rng(1)
    a = (rng.random((3, 30)) < 0.5).astype(float)
    same = difference_interval(a, a)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    perfect = accuracy_interval(np.ones((3, 45)))
    assert perfect.value == 1.0 and perfect.high == 1.0
    assert perfect.low == pytest.approx(wilson_interval(45, 45)[0]) and perfect.low < 0.95
    with pytest.raises(ValueError, match="equal shapes"):
        difference_interval(a, a[:, :10])
    with pytest.raises(ValueError, match="at least 1 image"):
        seed_image_interval(np.ones((3, 0)))
    # One test image: only the seeds' spread and Wilson's width are left, and the method says so.
    single = accuracy_interval(np.array([[1.0], [0.0], [1.0]]))
    assert single.low < single.value < single.high and "1 image" in single.describe()


def test_chance_is_the_majority_rate_and_balanced_accuracy_ignores_the_class_mix():
    labels = np.array([0] * 8 + [1] * 2)
    assert majority_rate(labels) == 0.8  # not 1/2: always answering class 0 scores 0.8
    assert majority_rate(np.array([2, 3, 2, 3])) == 0.5  # two classes of four, balanced: 1/2, not 1/4
    constant = np.zeros(10, dtype=int)
    assert balanced_accuracy(labels, constant) == 0.5
    assert balanced_accuracy(labels, labels) == 1.0
    with pytest.raises(ValueError, match="empty"):
        majority_rate(np.array([]))
