"""Classification metrics: accuracy, balanced accuracy, chance (the majority rate), macro F1,
confusion matrix, one-vs-rest ROC and AUC.

All take integer labels ``(N,)`` and, for ROC, class probabilities ``(N, K)``.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class i predicted as j."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((labels == predictions).mean())


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean over the classes present in ``labels`` of their recall: a constant prediction scores
    1 / (number of classes present), whatever the class mix."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if len(labels) == 0:
        raise ValueError("balanced accuracy of an empty set is undefined")
    return float(np.mean([(predictions[labels == k] == k).mean() for k in np.unique(labels)]))


def majority_rate(labels: np.ndarray) -> float:
    """The accuracy of always answering the most frequent class of ``labels``: the chance level of
    a test set, whatever its class mix (1/K only when its K classes are balanced)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("the majority rate of an empty set is undefined")
    return float(np.unique(labels, return_counts=True)[1].max() / len(labels))


def macro_f1(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> float:
    """Mean over classes of F1 = 2 TP / (2 TP + FP + FN); a class absent from both is skipped."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    tp = np.diag(matrix).astype(float)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    denominator = 2 * tp + fp + fn
    present = denominator > 0
    return float((2 * tp[present] / denominator[present]).mean())


def roc_curve(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) over every score threshold, ties grouped."""
    positives, negatives = int(is_positive.sum()), int((~is_positive).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"ROC needs both classes present, got {positives} positives and {negatives} negatives")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_truth = scores[order], is_positive[order]
    last_of_ties = np.r_[np.nonzero(np.diff(sorted_scores))[0], len(scores) - 1]
    tps = np.cumsum(sorted_truth)[last_of_ties]
    fps = (last_of_ties + 1) - tps
    return np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives]


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under a ROC curve by the trapezoidal rule."""
    return float(np.trapezoid(tpr, fpr))


def roc_report(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, object]:
    """Per-class one-vs-rest ROC curves and AUCs, plus the micro average over all (sample, class) pairs."""
    num_classes = probabilities.shape[1]
    one_hot = np.eye(num_classes, dtype=bool)[labels]  # (N, K)
    curves, aucs = {}, {}
    for k in range(num_classes):
        if one_hot[:, k].all() or not one_hot[:, k].any():
            continue  # AUC undefined for a class absent (or alone) in this split
        fpr, tpr = roc_curve(one_hot[:, k], probabilities[:, k])
        curves[k], aucs[k] = (fpr, tpr), auc(fpr, tpr)
    micro_fpr, micro_tpr = roc_curve(one_hot.ravel(), probabilities.ravel())
    return {
        "curves": curves,
        "auc": aucs,
        "micro_curve": (micro_fpr, micro_tpr),
        "micro_auc": auc(micro_fpr, micro_tpr),
    }
