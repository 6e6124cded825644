"""Known answers of the synthetic-image metrics: IS, KID, histogram KL, pixel metrics, intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from bio_assets.core.metrics.distribution import inception_score, kernel_inception_distance, kid_subset_size
from bio_assets.core.metrics.extractors import FeatureExtractor
from bio_assets.core.metrics.intervals import wilson_interval
from bio_assets.core.metrics.pixels import (
    color_histogram,
    histogram_kl,
    kl_divergence,
    nearest_neighbour_scores,
    sample_for_kl,
)
from bio_assets.core.reporting.plots import accuracy_interval_plot


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = inception_score(np.full((50, 7), 1 / 7))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == 0.0


@pytest.mark.parametrize("k", [2, 4, 10])
def test_inception_score_of_k_equally_likely_certain_classes_is_k(k):
    probabilities = np.eye(k)[np.arange(10 * k) % k]
    assert inception_score(probabilities)[0] == pytest.approx(k, rel=1e-12)


def test_inception_score_matches_torchmetrics_formula_on_random_predictions():
    from torchmetrics.image.inception import InceptionScore

    logits = torch.randn(64, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    metric = InceptionScore(feature=torch.nn.Identity(), splits=1, normalize=False)
    metric.inception = torch.nn.Identity()  # the "features" are the logits themselves
    metric.features.append(logits)
    expected = float(metric.compute()[0])
    assert inception_score(torch.softmax(logits, dim=1).numpy())[0] == pytest.approx(expected, rel=1e-6)


def test_inception_score_rejects_rows_that_are_not_probabilities():
    with pytest.raises(ValueError, match="summing to 1"):
        inception_score(np.array([[0.5, 0.6]]))


def test_kid_of_identical_sets_is_near_zero_and_of_shifted_sets_is_not():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 16))
    same, _, _ = kernel_inception_distance(
        features, features.copy(), np.random.default_rng(1), subsets=50, subset_size=100
    )
    shifted, _, _ = kernel_inception_distance(
        features, features + 1.0, np.random.default_rng(1), subsets=50, subset_size=100
    )
    assert abs(same) < 0.02 * shifted and shifted > 1.0


def test_kid_unbiased_estimate_matches_a_direct_computation():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)) + 0.5
    kernel = lambda a, b: (a @ b.T / 4 + 1) ** 3  # noqa: E731
    m = 6
    k_rr, k_ff, k_rf = kernel(real, real), kernel(fake, fake), kernel(real, fake)
    expected = (
        (k_rr.sum() - np.trace(k_rr)) / (m * (m - 1)) + (k_ff.sum() - np.trace(k_ff)) / (m * (m - 1)) - 2 * k_rf.mean()
    )
    value, std, size = kernel_inception_distance(real, fake, np.random.default_rng(0), subsets=3, subset_size=6)
    assert size == 6 and value == pytest.approx(expected, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_kid_subset_size_adapts_to_small_classes():
    assert kid_subset_size(40, 25, 1000) == 25
    with pytest.raises(ValueError, match="at least 2"):
        kid_subset_size(1, 50, 1000)


def test_kl_known_answer_and_zero_for_identical_histograms():
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert kl_divergence(p, q, epsilon=0.0) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-12)
    assert kl_divergence(p, q) == pytest.approx(entropy(p, q), rel=1e-6)
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-15)


def test_histogram_kl_of_images_with_known_pixel_shares():
    dark = np.zeros((1, 2, 2, 3), np.uint8)
    half = dark.copy()
    half[0, 0, :, :] = 200  # half the pixels bright in every channel
    assert color_histogram(half, bins=2)[0].tolist() == [0.5, 0.5]
    assert histogram_kl(half, half, bins=2) == pytest.approx(0.0, abs=1e-12)
    # KL([.5,.5] || [1,0]) with epsilon smoothing: large but finite.
    assert 10 < histogram_kl(half, dark, bins=2) < 30


def test_kl_protocol_draws_150_or_all():
    images = np.zeros((200, 4, 4, 3), np.uint8)
    assert len(sample_for_kl(images, 150, np.random.default_rng(0))) == 150
    assert len(sample_for_kl(images[:40], 150, np.random.default_rng(0))) == 40


def test_nearest_neighbour_pixel_metrics_known_answers():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
    offset = real[2].astype(np.int16) + 10
    synthetic = np.stack([real[1], np.clip(offset, 0, 255).astype(np.uint8)])
    scores = nearest_neighbour_scores(synthetic, real)
    assert scores.nearest.tolist() == [1, 2]
    assert scores.mse[0] == 0.0 and math.isinf(scores.psnr[0]) and scores.ssim[0] == pytest.approx(1.0)
    mse = float((((synthetic[1].astype(float) - real[2]) / 255) ** 2).mean())
    assert scores.mse[1] == pytest.approx(mse, rel=1e-9) and scores.rmse[1] == pytest.approx(math.sqrt(mse))
    assert scores.psnr[1] == pytest.approx(10 * math.log10(1 / mse), rel=1e-6)


def test_wilson_interval_known_answer():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_score_synthetic_measures_how_well_images_follow_their_class():
    from bio_assets.core.metrics.extractors import FeatureExtractor
    from bio_assets.core.metrics.synthetic import LabelledSet, score_synthetic

    # A "classifier" that reads the class from the mean brightness: dark -> 0, bright -> 1.
    def logits(x: torch.Tensor) -> torch.Tensor:
        brightness = x.mean(dim=(1, 2, 3))
        return torch.stack([-brightness, brightness], dim=1) * 10

    extractor = FeatureExtractor(
        "toy", 8, lambda x: x.flatten(1)[:, :6] + 0.01 * torch.arange(6.0), torch.device("cpu"), classify=logits
    )
    rng = np.random.default_rng(0)
    dark, bright = (
        rng.integers(0, 60, (20, 8, 8, 3), dtype=np.uint8),
        rng.integers(195, 255, (20, 8, 8, 3), dtype=np.uint8),
    )
    real = LabelledSet(torch.from_numpy(np.concatenate([dark, bright])), np.repeat([0, 1], 20))
    following = LabelledSet(torch.from_numpy(np.concatenate([dark[:10], bright[:10]])), np.repeat([0, 1], 10))
    ignoring = LabelledSet(
        torch.from_numpy(np.concatenate([dark[:5], bright[:5], dark[5:10], bright[5:10]])), np.repeat([0, 1], 10)
    )
    good = score_synthetic(
        extractor,
        real,
        following,
        class_names=("dark", "bright"),
        rng=np.random.default_rng(0),
        kid_subsets=5,
        kid_subset_size=10,
    )
    bad = score_synthetic(
        extractor,
        real,
        ignoring,
        class_names=("dark", "bright"),
        rng=np.random.default_rng(0),
        kid_subsets=5,
        kid_subset_size=10,
    )
    assert good.class_agreement.value == 1.0 and bad.class_agreement.value == 0.5 and good.real_agreement.value == 1.0
    assert good.class_agreement.detail == "chance 0.500" and good.class_agreement.name == "class_agreement_20_toy"
    assert set(good.class_fid) == {"dark", "bright"}


def test_generated_fid_classes_follow_an_imbalanced_reference():
    import torch

    from bio_assets.core.gan.scoring import FidScorer, matched_labels

    assert torch.bincount(matched_labels(10, (6, 2, 2))).tolist() == [6, 2, 2]
    assert torch.bincount(matched_labels(7, (1, 1))).tolist() == [4, 3]  # largest remainder, ties to the first
    assert torch.bincount(matched_labels(250, (9, 100, 76))).tolist() == [12, 135, 103]  # the source's G1/G2/G3
    extractor = FeatureExtractor("mean_rgb", 8, lambda x: x.mean(dim=(2, 3)), torch.device("cpu"))
    real = torch.randint(0, 255, (12, 8, 8, 3), dtype=torch.uint8)
    imbalanced = FidScorer.against(extractor, real, 12, 2, real_labels=torch.tensor([0] * 9 + [1] * 3))
    assert torch.bincount(imbalanced.labels()).tolist() == [9, 3]
    balanced = FidScorer.against(extractor, real, 12, 2, real_labels=torch.tensor([0, 1] * 6))
    assert torch.bincount(balanced.labels()).tolist() == [6, 6]


def test_overall_fid_and_kid_use_class_matched_synthetic_rows_and_say_when_kid_std_is_understated():
    import torch

    from bio_assets.core.metrics.synthetic import LabelledSet, class_matched_rows, score_synthetic

    rng = np.random.default_rng(0)
    real_labels, fake_labels = np.array([0] * 30 + [1] * 10), np.array([0] * 20 + [1] * 20)
    rows = class_matched_rows(real_labels, fake_labels, rng)
    assert np.bincount(fake_labels[rows]).tolist() == [20, 6] and len(set(rows.tolist())) == 26
    assert len(class_matched_rows(np.array([0, 1] * 5), fake_labels, rng)) == 40  # balanced: every row
    extractor = FeatureExtractor("mean_rgb", 8, lambda x: x.mean(dim=(2, 3)), torch.device("cpu"))

    def images(n: int) -> torch.Tensor:
        return torch.randint(0, 255, (n, 8, 8, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))

    scores = score_synthetic(
        extractor, LabelledSet(images(40), real_labels), LabelledSet(images(41)[:40], fake_labels),
        class_names=("a", "b"), rng=rng, kid_subsets=5, kid_subset_size=1000,
    )  # fmt: skip
    assert scores.fid.num_fake == 26 and "class-matched" in scores.fid.sampling
    assert scores.kid.num_fake == 26 and "subsets of 26" in scores.kid.detail and "understates" not in scores.kid.detail
    assert scores.class_fid["b"].num_fake == 20  # per class: every synthetic image of the class
    few_real = score_synthetic(
        extractor, LabelledSet(images(12), np.array([0] * 9 + [1] * 3)), LabelledSet(images(41)[:40], fake_labels),
        class_names=("a", "b"), rng=rng, kid_subsets=5, kid_subset_size=1000,
    )  # fmt: skip
    # 12 real images: every KID subset holds all of them, so only the synthetic draw varies.
    assert "subsets of 12" in few_real.kid.detail and "understates the uncertainty" in few_real.kid.detail


def test_wilson_interval_contains_an_all_correct_or_all_wrong_score():
    """45 of 45 once gave a high bound 1e-16 below 1.0, and the report's accuracy plot refused the negative whisker."""
    assert wilson_interval(45, 45)[1] == 1.0 and wilson_interval(45, 45)[0] < 1.0
    assert wilson_interval(0, 45)[0] == 0.0 and wilson_interval(0, 45)[1] > 0.0
    accuracy_interval_plot([("all correct", 1.0, *wilson_interval(45, 45))], "t")  # raised ValueError on 'xerr'
