"""The report's comparisons with the source: the searched GAN's FID against the source's 3.39."""

from __future__ import annotations

import dataclasses

from bench.bench_synthesis import report_inputs
from bio_assets.core.reporting import source
from bio_assets.core.reporting.document import Report
from bio_assets.core.reporting.report import _does_it_work_section, build_report
from bio_assets.core.reporting.verdicts import ExtensionResults


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


def test_a_baseline_at_chance_over_three_seeds_is_left_out_and_chance_is_the_majority_rate():
    small = report_inputs(real_images=8, fake_images=8, size=16)
    classes = small.class_names
    # An imbalanced test split: 16 of 40 test images are of the first class, so chance is 0.4, not 1/K.
    assert len(classes) == 4
    tests = {n: 16 if i == 0 else 8 for i, n in enumerate(classes)}
    inputs = dataclasses.replace(
        small,
        counts={n: {"raw": 40, "test": tests[n]} for n in classes},
        cnn_rows=[
            {"model": "searched CNN (real)", "test_accuracy": 0.80},
            {"model": "vgg16", "test_accuracy": 0.45, "test_accuracy_ci_low": 0.30, "seeds": 3},  # at chance
            {"model": "alexnet", "test_accuracy": 0.45, "test_accuracy_ci_low": 0.30, "seeds": 1},  # one training
            {"model": "resnet18", "test_accuracy": 0.90, "test_accuracy_ci_low": 0.8, "seeds": 3},  # learnt, better
        ],
    )
    text = build_report(inputs).inline_markdown()
    did_not_learn = text[text.index("Baselines that did not learn") :]
    assert "vgg16" in did_not_learn.split("\n\n")[1] and "40.0%" in did_not_learn
    unjudged = text[text.index("Baselines near chance in too few trainings") :].split("\n\n")[1]
    assert "alexnet" in unjudged and "vgg16" not in unjudged
    (better,) = [s for s in inputs.shortfalls if s.startswith("Baselines with a higher")]
    assert "resnet18" in better and "vgg16" not in better


def extension_metadata(**changes) -> dict:
    """extended_classifier's metadata, as its asset records it (three seeds)."""
    metadata = {
        "seeds": [0, 1, 2], "chance": 0.2, "num_synthetic_images_added": 600,
        "classes_with_synthetic": ["a", "b", "c", "d", "e"], "trained_gan_run": "abcdef123456",
        "control_accuracy": 0.80, "control_accuracy_ci_low": 0.70, "control_accuracy_ci_high": 0.88,
        "control_accuracy_interval": "95% t interval over 3 seeds and 45 test images", "control_steps": 90,
        "extended_accuracy": 0.85, "extended_accuracy_ci_low": 0.76, "extended_accuracy_ci_high": 0.91,
        "accuracy_gain": 0.05, "accuracy_gain_ci_low": 0.01, "accuracy_gain_ci_high": 0.09,
        "accuracy_gain_interval": "95% t interval over 3 seeds and 45 test images",
        "tstr_accuracy": 0.70, "tstr_accuracy_ci_low": 0.60, "tstr_accuracy_ci_high": 0.78, "tstr_chance": 0.5,
        "tstr_balanced_accuracy": 0.69, "tstr_num_test_images": 18,
        "class_agreement_real_classifier": 0.66, "class_agreement_real_classifier_ci_low": 0.55,
        "class_agreement_real_classifier_ci_high": 0.75, "class_agreement_real_classifier_chance": 0.2,
    }  # fmt: skip
    return {**metadata, **changes}


def does_it_work(metadata: dict) -> str:
    small = report_inputs(real_images=8, fake_images=8, size=16)
    inputs = dataclasses.replace(
        small, extension=ExtensionResults.from_metadata(metadata), search_comparison={"aging": 0.9, "random": 0.85},
        departures=[("GAN training iterations", "300", "100 000", "time")],
    )  # fmt: skip
    report = Report("t")  # the section alone: build_report would also render every figure
    _does_it_work_section(inputs, report)
    return report.inline_markdown()


def test_does_it_work_states_each_verdict_with_its_interval_and_true_chance():
    section = does_it_work(extension_metadata())
    assert "600 synthetic images (a, b, c, d, e) were added" in section and "as many optimizer steps (90)" in section
    assert "+0.0500 [+0.0100, +0.0900]" in section and "Synthetic data helped: the whole interval lies above" in section
    # TSTR at 70% [60, 78] on 2 classes: chance is their majority rate 50%, not 1/5.
    assert "70.0% [60.0%, 78.0%]" in section and "chance 50.0%" in section and "carry their class's features" in section
    assert "66.0% [55.0%, 75.0%]" in section and "the generator follows its class" in section
    assert "one training of the GAN (trained_gan run abcdef12)" in section
    assert "aging evolution's best cell reaches 90.0%" in section and "100 000" in section
    unclear = does_it_work(extension_metadata(accuracy_gain=-0.01, accuracy_gain_ci_low=-0.05))
    assert "We cannot tell a gain from no gain: the interval holds zero" in unclear
    # TSTR whose interval reaches its true chance (50%), though it is far above 1/5.
    weak = does_it_work(extension_metadata(tstr_accuracy=0.55, tstr_accuracy_ci_low=0.45))
    assert "they teach no more than chance" in weak


def test_no_verdict_without_three_seeds_or_without_synthetic_images():
    one_seed = does_it_work(extension_metadata(seeds=[0]))
    assert one_seed.count("no verdict: 1 seed(s)") == 2 and "No verdict: 1 seed(s)" in one_seed
    assert "helped" not in one_seed and "follows its class" not in one_seed.replace("follow its class?", "")
    nothing = {k: v for k, v in extension_metadata().items() if not k.startswith(("accuracy_gain", "tstr"))}
    nothing.update(num_synthetic_images_added=0, accuracy_gain_skipped="no class passed its gates")
    section = does_it_work(nothing)
    assert "No verdict: no class passed its gates" in section and "+0.0000" not in section


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


def test_quality_references_are_the_test_split_and_copies_are_sought_in_the_training_images(monkeypatch):
    """FID, KID, KL and class agreement compare with images no model trained on (the test split);
    the nearest-neighbour pixel metrics look for copies of the GAN's training images."""
    import numpy as np
    import torch

    import bio_assets.core.reporting.inputs as inputs_module
    from bio_assets.core.cnn.dataset import assemble
    from bio_assets.core.io.records import ImageSet, ImageSplits
    from bio_assets.core.reporting.inputs import RecordedResults, ReportSettings
    from bio_assets.core.reporting.statistics import compare_class

    rng = np.random.default_rng(0)

    def images(value: int, n: int, name: str) -> ImageSet:
        pixels = np.full((n, 16, 16, 3), value, dtype=np.uint8) + rng.integers(0, 3, (n, 16, 16, 3), dtype=np.uint8)
        return ImageSet(pixels, np.array([f"{name}{i}" for i in range(n)]), np.array([""] * n), name)

    # Train images near 10, validation near 100, test near 200: each split is recognizable by its pixels.
    splits = {n: ImageSplits(images(10, 6, n), images(100, 3, n), images(200, 3, n), 0) for n in ("a", "b")}
    data = assemble({n: s.train for n, s in splits.items()}, splits)
    synthetic = {n: images(50, 4, n).images for n in ("a", "b")}
    seen = {}

    def quality(extractors, reference, fake, class_names, settings):
        seen["reference"] = reference
        return []

    def compare(name, real, fake, rng, per_side=150, *, train=None):
        seen.setdefault("kl_real", []).append(real)
        seen.setdefault("copies_from", []).append(train)
        return compare_class(name, real, fake, rng, per_side, train=train)

    monkeypatch.setattr(inputs_module, "synthetic_quality", quality)
    monkeypatch.setattr(inputs_module, "compare_class", compare)
    recorded = RecordedResults([], [], "biocnn1", {}, {n: (True, []) for n in splits}, [])
    inputs_module.report_inputs(
        "t", data, splits, {n: s.train for n, s in splits.items()}, synthetic, extractors={}, models={},
        recorded=recorded, settings=ReportSettings(), inception_status="skipped", device=torch.device("cpu"),
    )  # fmt: skip
    assert all(abs(float(r.mean()) - 201) < 2 for r in seen["reference"].values())  # the test split
    assert all(abs(float(r.mean()) - 201) < 2 for r in seen["kl_real"])
    assert all(abs(float(t.mean()) - 11) < 2 for t in seen["copies_from"])  # the training split


def test_the_report_shows_the_data_efficiency_study_when_it_ran_and_says_how_to_run_it_otherwise():
    from bio_assets.core.reporting.report import _data_efficiency_section

    small = report_inputs(real_images=8, fake_images=8, size=16)
    row = {
        "size": 20, "train_per_class": {"a": 20, "b": 20}, "searched_test": [0.8, 0.7, 0.9],
        "extended_test": [0.85, 0.75, 0.95], "control_test": [0.78, 0.68, 0.88], "baseline_test": [0.75, 0.6, 0.9],
        "gain": [0.07, 0.01, 0.13], "best_baseline": "lenet5", "synthetic": {"kept": 90, "added": 80},
    }  # fmt: skip
    missing, ran = Report("t"), Report("t")
    _data_efficiency_section(small, missing)
    _data_efficiency_section(dataclasses.replace(small, data_efficiency=[row, {**row, "size": 0}]), ran)
    assert f"Materialize `{small.dataset}/data_efficiency`" in missing.inline_markdown()
    text = ran.inline_markdown()
    assert "| 20 | 0.800 [0.700, 0.900] | lenet5: 0.750 [0.600, 0.900] | +0.050 |" in text
    assert "| 20 (all) |" in text and "+0.070" not in text and "0.070 [0.010, 0.130]" in text
    assert "data:image/png;base64," in text
