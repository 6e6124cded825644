"""Plots as PNG bytes (matplotlib, no display): search fitness, ROC curves."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def fitness_plot(
    fitness: np.ndarray,
    cached: np.ndarray,
    title: str,
    ylabel: str = "validation accuracy",
    higher_is_better: bool = True,
) -> bytes:
    """Score of each evaluation in order, cache hits hollow, and the running best."""
    figure, axis = plt.subplots(figsize=(6, 3.2))
    order = np.arange(1, len(fitness) + 1)
    axis.scatter(order[~cached], fitness[~cached], s=12, label="trained")
    axis.scatter(order[cached], fitness[cached], s=12, facecolors="none", edgecolors="grey", label="cache hit")
    best = np.maximum.accumulate(fitness) if higher_is_better else np.minimum.accumulate(fitness)
    axis.plot(order, best, color="black", linewidth=1.2, label="best so far")
    axis.set(xlabel="evaluation", ylabel=ylabel, title=title)
    axis.legend(loc="lower right" if higher_is_better else "upper right", fontsize=8)
    return _png(figure)


def curve_plot(curves: dict[str, list[tuple[int, float]]], title: str, ylabel: str = "FID (lower is better)") -> bytes:
    """One line per named curve of (iteration, value) points."""
    figure, axis = plt.subplots(figsize=(6, 3.2))
    for name, points in curves.items():
        if points:
            steps, values = zip(*points)
            axis.plot(steps, values, marker="o", markersize=3, linewidth=1.2, label=name)
    axis.set(xlabel="iteration", ylabel=ylabel, title=title)
    axis.legend(fontsize=8)
    return _png(figure)


def roc_plot(
    curves: dict[int, tuple[np.ndarray, np.ndarray]],
    aucs: dict[int, float],
    micro: tuple[np.ndarray, np.ndarray],
    micro_auc: float,
    *,
    class_names: tuple[str, ...],
    title: str,
) -> bytes:
    """One-vs-rest ROC curve per class and the micro average."""
    figure, axis = plt.subplots(figsize=(5, 4.5))
    for k, (fpr, tpr) in curves.items():
        axis.plot(fpr, tpr, linewidth=1, label=f"{class_names[k]} (AUC {aucs[k]:.3f})")
    axis.plot(*micro, color="black", linestyle="--", linewidth=1.5, label=f"micro average (AUC {micro_auc:.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    axis.legend(loc="lower right", fontsize=7)
    return _png(figure)


def histogram_plot(real: np.ndarray, synthetic: np.ndarray, title: str) -> bytes:
    """Real against synthetic colour histograms ``(3, bins)``: one panel per channel."""
    figure, axes = plt.subplots(1, 3, figsize=(9, 2.4), sharey=True)
    bins = np.arange(real.shape[1])
    for channel, (axis, name) in enumerate(zip(axes, ("red", "green", "blue"))):
        axis.plot(bins, real[channel], color=name, linewidth=1.2, label="real")
        axis.plot(bins, synthetic[channel], color="black", linewidth=0.9, linestyle="--", label="synthetic")
        axis.set(xlabel=f"{name} value", title=name)
    axes[0].set_ylabel("share of pixels")
    axes[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    return _png(figure)


def accuracy_interval_plot(rows: list[tuple[str, float, float, float]], title: str) -> bytes:
    """Horizontal bars of accuracy with [low, high] whiskers, one per (name, value, low, high)."""
    figure, axis = plt.subplots(figsize=(6, 0.5 + 0.45 * len(rows)))
    names = [r[0] for r in rows]
    values = np.array([r[1] for r in rows])
    errors = np.array([[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]])
    axis.barh(names, values, xerr=errors, color="#4c72b0", capsize=4)
    axis.set(xlim=(0, 1.02), xlabel="test accuracy", title=title)
    axis.invert_yaxis()
    return _png(figure)


def learning_curve_plot(curves: dict[str, list[tuple[int, float, float, float]]]) -> bytes:
    """Test accuracy against real training images per class (log scale), one line per model with
    its interval as a band; ``curves``: name -> [(images per class, value, low, high)]."""
    figure, axis = plt.subplots(figsize=(6.4, 3.8))
    for name, points in curves.items():
        points = sorted(points)
        sizes = np.array([p[0] for p in points])
        axis.plot(sizes, [p[1] for p in points], marker="o", label=name)
        axis.fill_between(sizes, [p[2] for p in points], [p[3] for p in points], alpha=0.12)
    axis.set_xscale("log")
    sizes = sorted({p[0] for points in curves.values() for p in points})
    axis.set_xticks(sizes, [str(s) for s in sizes])
    axis.minorticks_off()  # a log axis spanning less than a decade would label its minor ticks "3x10^0"
    # Zoomed to the data (differences of a few points are what the study is about), never above 1.
    lowest = min(p[2] for points in curves.values() for p in points)
    axis.set(xlabel="real training images per class", ylabel="test accuracy (95% interval)")
    axis.set_ylim(max(0.0, lowest - 0.05), 1.01)
    axis.set_title("data efficiency")
    axis.legend(loc="lower right", fontsize=8)
    return _png(figure)
