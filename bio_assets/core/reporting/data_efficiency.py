"""The data-efficiency study as a table and a learning curve, from its JSON rows (``study_rows``)."""

from __future__ import annotations

from bio_assets.core.reporting.plots import learning_curve_plot

# Plot label -> the row's field holding [value, low, high] of that arm's test accuracy.
ARMS = {
    "searched CNN, real only": "searched_test",
    "searched CNN, real + synthetic": "extended_test",
    "real only, equal steps": "control_test",
    "best classic baseline": "baseline_test",
}


def _interval(values: list[float] | None) -> str:
    return "–" if values is None else f"{values[0]:.3f} [{values[1]:.3f}, {values[2]:.3f}]"


def _images(row: dict) -> str:
    counts = sorted(set(row["train_per_class"].values()))
    text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return text + (" (all)" if row["size"] == 0 else "")


def study_table(rows: list[dict]) -> str:
    """Markdown: one row per training size, every arm's test accuracy with its 95% interval."""
    lines = [
        "| real images per class | searched CNN, real only | best baseline (by validation) | searched − baseline "
        "| real + synthetic | real only, equal steps | gain over equal steps | synthetic kept / added |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        difference = row["searched_test"][0] - row["baseline_test"][0]
        lines.append(
            f"| {_images(row)} | {_interval(row['searched_test'])} | {row['best_baseline']}: "
            f"{_interval(row['baseline_test'])} | {difference:+.3f} | {_interval(row['extended_test'])} | "
            f"{_interval(row['control_test'])} | {_interval(row['gain'])} | "
            f"{row['synthetic']['kept']} / {row['synthetic']['added']} |"
        )
    return "\n".join(lines)


def learning_curve(rows: list[dict]) -> bytes:
    """PNG: each arm's test accuracy against the real training images per class."""
    curves = {
        label: [(max(row["train_per_class"].values()), *row[field]) for row in rows] for label, field in ARMS.items()
    }
    return learning_curve_plot(curves)
