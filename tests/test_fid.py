"""FID known answers (pytorch-fid's style) and agreement with a SciPy reference computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from bio_assets.core.metrics.fid import FeatureStatistics, fid_from_statistics, frechet_distance


def scipy_reference(mu1, s1, mu2, s2) -> float:
    """pytorch-fid's formula: sqrtm of the product, imaginary round-off dropped."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def random_covariance(rng, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=8), random_covariance(rng, 8)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_equal_covariances_give_the_squared_mean_distance():
    rng = np.random.default_rng(1)
    sigma = random_covariance(rng, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(((mu1 - mu2) ** 2).sum(), rel=1e-9)


def test_one_dimensional_known_answer():
    # (m1 - m2)^2 + (s1 - s2)^2 for variances s1^2, s2^2: (1 - 4)^2 + (2 - 3)^2 = 10
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([4.0]), np.array([[9.0]])) == pytest.approx(
        10.0
    )


def test_symmetric():
    rng = np.random.default_rng(2)
    a = (rng.normal(size=5), random_covariance(rng, 5))
    b = (rng.normal(size=5), random_covariance(rng, 5))
    assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-10)


def test_agrees_with_scipy_reference_to_1e_6():
    rng = np.random.default_rng(3)
    for d in (4, 16, 64):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_covariance(rng, d), random_covariance(rng, d)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(scipy_reference(mu1, s1, mu2, s2), rel=1e-6)


def test_finite_for_singular_covariances():
    rng = np.random.default_rng(4)
    real = FeatureStatistics.of(rng.normal(size=(10, 32)))  # 10 samples in 32 dimensions: rank 9
    fake = FeatureStatistics.of(rng.normal(size=(12, 32)) + 0.5)
    assert np.linalg.matrix_rank(real.covariance) < 32
    value = fid_from_statistics(real, fake, "test", "none")
    assert np.isfinite(value.value) and value.value > 0
    assert (value.num_real, value.num_fake, value.extractor, value.name) == (10, 12, "test", "fid_12_test")


def test_bad_inputs_fail_loudly():
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        FeatureStatistics.of(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN or inf"):
        FeatureStatistics.of(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
