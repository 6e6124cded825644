"""Known answers for the classification metrics."""

from __future__ import annotations

import numpy as np
import pytest

from bio_assets.core.metrics.classification import accuracy, auc, confusion_matrix, macro_f1, roc_curve, roc_report


def test_confusion_and_accuracy():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    assert confusion_matrix(labels, predictions, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert accuracy(labels, predictions) == pytest.approx(0.6)


def test_macro_f1_known_answer():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    # F1: class 0 = 2*1/(2+1+1) = 0.5; class 1 = 4/(4+1+0) = 0.8; class 2 = 0
    assert macro_f1(labels, predictions, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(labels, labels, 3) == 1.0


def test_roc_perfect_random_and_inverted():
    truth = np.array([True, True, False, False])
    assert auc(*roc_curve(truth, np.array([0.9, 0.8, 0.2, 0.1]))) == 1.0
    assert auc(*roc_curve(truth, np.array([0.1, 0.2, 0.8, 0.9]))) == 0.0
    assert auc(*roc_curve(truth, np.array([0.5, 0.5, 0.5, 0.5]))) == 0.5  # ties grouped: the diagonal


def test_auc_equals_the_mann_whitney_statistic():
    rng = np.random.default_rng(0)
    truth = rng.random(200) < 0.4
    scores = rng.normal(truth * 0.8, 1.0)
    pairs = [(p > n) + 0.5 * (p == n) for p in scores[truth] for n in scores[~truth]]
    assert auc(*roc_curve(truth, scores)) == pytest.approx(np.mean(pairs))


def test_roc_report_micro_average_and_per_class():
    labels = np.array([0, 1, 2, 2])
    probabilities = np.eye(3)[labels] * 0.8 + 0.1 / 1  # correct class always highest
    report = roc_report(labels, probabilities)
    assert report["auc"] == {0: 1.0, 1: 1.0, 2: 1.0} and report["micro_auc"] == 1.0


def test_temperature_scaling_recovers_the_temperature_the_labels_were_drawn_with():
    from bio_assets.core.metrics.calibration import fit_temperature, scaled

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 4))
    overconfident = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    # Labels drawn from softmax(logits / 2): the model is twice too sharp, and T = 2 undoes it.
    truth = scaled(overconfident, 2.0)
    labels = np.array([rng.choice(4, p=row) for row in truth])
    assert fit_temperature(overconfident, labels) == pytest.approx(2.0, rel=0.1)
    assert np.allclose(scaled(overconfident, 1.0), overconfident)
    assert np.allclose(scaled(overconfident, 2.0).sum(1), 1.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        scaled(overconfident, 0.0)
