"""The report's comparisons with the source: the searched GAN's FID against the source's 3.39."""

from __future__ import annotations

import dataclasses

from bench.bench_synthesis import report_inputs
from bio_assets.core.reporting import source
from bio_assets.core.reporting.report import build_report


def fid_shortfalls(searched_fid: float) -> list[str]:
    small = report_inputs(real_images=8, fake_images=8, size=16)
    inputs = dataclasses.replace(small, gan_rows=[{"model": "searched GAN", "fid": searched_fid}])
    build_report(inputs)
    return [s for s in inputs.shortfalls if s.startswith("The searched GAN's FID")]


def test_the_searched_gan_is_compared_with_the_sources_own_fid():
    assert source.SEARCHED_GAN_FID == 3.39
    (shortfall,) = fid_shortfalls(5.0)  # above 3.39, below BGAN's 10.03: a shortfall
    assert "5.00" in shortfall and "3.39" in shortfall
    assert fid_shortfalls(3.0) == []


def test_a_baseline_at_chance_is_named_and_left_out_of_the_comparison():
    small = report_inputs(real_images=8, fake_images=8, size=16)
    classes = small.class_names
    inputs = dataclasses.replace(
        small,
        counts={n: {"raw": 20, "test": 10} for n in classes},
        cnn_rows=[
            {"model": "searched CNN (real)", "test_accuracy": 0.80},
            {"model": "vgg16", "test_accuracy": 1 / len(classes)},  # at chance: did not learn
            {"model": "resnet18", "test_accuracy": 0.90},  # learnt, and better
        ],
    )
    text = build_report(inputs).inline_markdown()
    assert "Baselines that did not learn in their budget" in text and "vgg16" in text
    (better,) = [s for s in inputs.shortfalls if s.startswith("Baselines with a higher")]
    assert "resnet18" in better and "vgg16" not in better


def test_does_it_work_states_each_verdict_with_its_interval():
    from bio_assets.core.reporting.report import AccuracyRow

    small = report_inputs(real_images=8, fake_images=8, size=16)
    rows = [
        AccuracyRow("real only, equal-settings control", 0.80, 0.7, 0.88, ""),
        AccuracyRow("real + synthetic", 0.85, 0.76, 0.91, ""),
        AccuracyRow("synthetic only (TSTR)", 0.70, 0.60, 0.78, ""),
    ]
    gain = {"accuracy_gain": 0.05, "accuracy_gain_ci_low": 0.01, "accuracy_gain_ci_high": 0.09,
            "accuracy_gain_interval": "95% paired bootstrap"}  # fmt: skip
    inputs = dataclasses.replace(
        small, accuracy_rows=rows, gain=gain, search_comparison={"aging": 0.9, "random": 0.85},
        departures=[("GAN training iterations", "300", "100 000", "time")],
    )  # fmt: skip
    text = build_report(inputs).inline_markdown()
    section = text[text.index("Does it work?") : text.index("Searched CNN against")]
    assert "+0.0500 [+0.0100, +0.0900]" in section and "Synthetic data helped" in section
    assert "70.0% [60.0%, 78.0%]" in section and "carry their class's features" in section
    assert "aging evolution's best cell reaches 90.0%" in section and "100 000" in section
    worse = dataclasses.replace(inputs, gain={**gain, "accuracy_gain": -0.01, "accuracy_gain_ci_low": -0.05})
    assert "no difference we can tell apart from zero" in build_report(worse).inline_markdown()


def test_a_longer_trained_gan_is_compared_with_the_baselines_at_their_budget():
    from bio_assets.app.summary import gan_comparison_lines
    from bio_assets.assets.reports import AT_BASELINE_BUDGET, matched_budget_row

    searched = {"fid": 1.0, "iterations": 600, "fid_extractor": "biocnn1", "fid_by_iteration": {"300": 20.0}}
    row = matched_budget_row(searched, {300})
    assert row["model"] == AT_BASELINE_BUDGET and (row["fid"], row["iterations"]) == (20.0, 300)
    assert matched_budget_row(searched, {300, 15_000}) is None  # baselines of several budgets: no single match
    assert matched_budget_row({**searched, "iterations": 300}, {300}) is None  # already the same budget
    lines = gan_comparison_lines(searched, {"dcgan": {"fid": 10.0, "iterations": 300}})
    # At 300 iterations the searched GAN's 20.0 is worse than DCGAN's 10.0, though its final 1.0 is not.
    assert "searched GAN 20.000 at 300 iterations" in lines[1] and "NOT better" in lines[1]
    unmatched = gan_comparison_lines({**searched, "fid_by_iteration": {}}, {"dcgan": {"fid": 10.0, "iterations": 300}})
    assert "NOT the same budget" in unmatched[1]
