"""The comparison report of one dataset: every section METHOD's end-to-end result needs, each
number beside the source's and with its provenance, and plain words where we fall short."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bio_assets.core.metrics.intervals import VERDICT_SEEDS, wilson_interval
from bio_assets.core.metrics.synthetic import ExtractorScores
from bio_assets.core.reporting import source
from bio_assets.core.reporting.data_efficiency import learning_curve, study_table
from bio_assets.core.reporting.document import Figure, Report, markdown_table
from bio_assets.core.reporting.grids import image_grid_png
from bio_assets.core.reporting.plots import accuracy_interval_plot, histogram_plot, roc_plot
from bio_assets.core.reporting.statistics import ClassComparison
from bio_assets.core.reporting.verdicts import (
    ExtensionResults,
    gain_line,
    generator_caveat,
    generator_line,
    pct,
    tstr_line,
)


@dataclass(frozen=True)
class AccuracyRow:
    name: str
    accuracy: float
    low: float
    high: float
    note: str
    chance: float | None = None  # the majority-class rate of the test images scored
    balanced_accuracy: float | None = None


@dataclass
class ReportInputs:
    dataset: str
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # class -> raw / train / val / test / augmented / synthetic
    cnn_rows: list[dict]  # model, test_accuracy, test_accuracy_std, test_macro_f1, epochs, source_accuracy
    gan_rows: list[dict]  # model, fid, iterations, source_fid, note
    gan_extractor: str
    extractor_scores: list[ExtractorScores]
    inception_status: str
    comparisons: list[ClassComparison]
    roc: dict[str, dict]  # model label -> core.metrics.classification.roc_report
    samples: dict[str, tuple[np.ndarray, np.ndarray]]  # class -> (real, synthetic) uint8 (N, S, S, 3)
    accuracy_rows: list[AccuracyRow]
    extension: ExtensionResults | None  # what extended_classifier recorded (None: not materialized)
    gates: dict[str, tuple[bool, list[str]]]
    settings: list[tuple[str, dict]]  # (asset, the settings and seeds behind its numbers)
    shortfalls: list[str] = field(default_factory=list)
    # searched_cell's aging-vs-random comparison: val accuracies, genotypes, trainings (None: not run)
    search_comparison: dict | None = None
    departures: list[tuple[str, str, str, str]] = field(default_factory=list)  # setting, here, source, why
    data_efficiency: list[dict] | None = None  # the opt-in study's rows (None: not materialized)


def _does_it_work_section(inputs: ReportInputs, report: Report) -> None:
    """The three questions the method stands on, each with its interval and true chance level, in plain words."""
    results = inputs.extension
    lines = [
        line
        for line in (
            generator_line(results, inputs.extractor_scores),
            tstr_line(results) if results is not None else None,
            gain_line(results) if results is not None else None,
        )
        if line is not None
    ]
    comparison = inputs.search_comparison
    if comparison is not None:
        difference = comparison["aging"] - comparison["random"]
        lines.append(
            f"- **Does aging evolution beat random search?** At the same budget, aging evolution's best cell "
            f"reaches {pct(comparison['aging'])} validation accuracy, random search's {pct(comparison['random'])} "
            f"({difference:+.4f}; one search each, so an anecdote rather than a test)."
        )
    else:
        lines.append(
            "- **Does aging evolution beat random search?** Not measured in this run: `searched_cell` compares the "
            "two at equal budget when `compare_random` is on (the `paper` profile)."
        )
    if not lines[:-1]:
        lines.insert(0, "- Synthetic images, TSTR and the control are not materialized yet.")
    blocks = ["\n".join(lines), generator_caveat(results)]
    if inputs.departures:
        blocks += [
            "This profile departs from the source in these settings (the `paper` profile keeps the source's):",
            markdown_table(["setting", "here", "source", "why"], [list(d) for d in inputs.departures]),
        ]
    report.add("Does it work?", *blocks)


def _cnn_section(inputs: ReportInputs, report: Report) -> None:
    rows = sorted(
        inputs.cnn_rows,
        key=lambda r: -r.get("test_accuracy", float("nan")) if r.get("test_accuracy") == r.get("test_accuracy") else 1,
    )
    table = [
        [
            r["model"],
            r.get("test_accuracy", float("nan")),
            r.get("test_accuracy_std", float("nan")),
            r.get("test_macro_f1", float("nan")),
            r.get("epochs", "?"),
            r.get("source_accuracy", float("nan")),
        ]
        for r in rows
    ]
    report.add(
        "Searched CNN against the classic baselines (source Tables 2.8/2.9)",
        markdown_table(["model", "test accuracy", "± std over seeds", "macro F1", "epochs", "source accuracy"], table),
        f"The source's searched network `5-[1]` reached {pct(source.SEARCHED_CNN_ACCURACY)} on its 4-class cytology "
        f"set; its best classic CNN {pct(source.BEST_CLASSIC_CNN_ACCURACY)}.",
    )
    searched = next((r for r in inputs.cnn_rows if r["model"].startswith("searched")), None)
    measured = [
        r for r in inputs.cnn_rows if r.get("test_accuracy") is not None and r["test_accuracy"] == r["test_accuracy"]
    ]
    # A baseline whose accuracy interval reaches chance (the test split's majority-class rate) over
    # at least VERDICT_SEEDS trainings did not learn in its budget: it is named, and left out of
    # every comparison with the searched network. With fewer seeds it is named without a verdict.
    tests = {n: inputs.counts[n].get("test", 0) for n in inputs.class_names}
    total = sum(tests.values())
    chance = max(tests.values()) / total if total else 0.0
    near_chance = [
        r
        for r in measured
        if not r["model"].startswith("searched")
        and total
        and r.get("test_accuracy_ci_low", wilson_interval(round(r["test_accuracy"] * total), total)[0]) <= chance
    ]
    not_learnt = [r["model"] for r in near_chance if r.get("seeds", 1) >= VERDICT_SEEDS]
    unjudged = [r["model"] for r in near_chance if r.get("seeds", 1) < VERDICT_SEEDS]
    if not_learnt:
        report.add(
            "Baselines that did not learn in their budget",
            f"{', '.join(not_learnt)}: test accuracy not above chance ({pct(chance)}, the majority-class rate) with "
            f"95% confidence on {total} test images over their seeds. They are left out of every comparison with the "
            "searched network; give them more epochs or another learning rate (`baseline_classifiers` settings).",
        )
        inputs.shortfalls.append(f"Baselines that did not learn in their budget: {', '.join(not_learnt)}.")
    if unjudged:
        report.add(
            "Baselines near chance in too few trainings to judge",
            f"{', '.join(unjudged)}: the interval of their test accuracy reaches chance ({pct(chance)}, the "
            f"majority-class rate), but fewer than {VERDICT_SEEDS} seeds trained them, so no verdict is given on "
            "whether they learnt; their rows stay in the comparison.",
        )
    measured = [r for r in measured if r["model"] not in not_learnt]
    if searched is None or "test_accuracy" not in searched:
        inputs.shortfalls.append("The searched classifier is not materialized, so it cannot be compared.")
        return
    if searched["test_accuracy"] < source.SEARCHED_CNN_ACCURACY:
        inputs.shortfalls.append(
            f"The searched CNN reaches {pct(searched['test_accuracy'])} test accuracy; the source reported "
            f"{pct(source.SEARCHED_CNN_ACCURACY)}."
        )
    better = [
        r["model"]
        for r in measured
        if not r["model"].startswith("searched") and r["test_accuracy"] > searched["test_accuracy"]
    ]
    if better:
        inputs.shortfalls.append(f"Baselines with a higher test accuracy than the searched CNN: {', '.join(better)}.")


def _gan_section(inputs: ReportInputs, report: Report) -> None:
    table = [
        [
            r["model"],
            r.get("fid", float("nan")),
            r.get("iterations", "?"),
            r.get("source_fid", float("nan")),
            r.get("note", ""),
        ]
        for r in sorted(inputs.gan_rows, key=lambda r: r.get("fid", float("inf")))
    ]
    report.add(
        f"Searched GAN against the classic GANs (source Tables 1.5/3.3; FID by {inputs.gan_extractor}, lower is "
        "better)",
        markdown_table(
            ["model", "FID", "iterations", "source FID (Inception, 15k it.; searched: final)", "note"], table
        ),
        "Our FIDs use the domain extractor named above and our iteration budget; the source's are Inception FIDs "
        "after 15 000 iterations, so only the ranking compares. As in the source, the searched GAN was selected on "
        "this same FID (extractor and reference images), and it trains with EMA, DiffAugment and class "
        "conditioning that the unconditional baselines lack: the comparison favours it by design.",
    )
    searched_rows = [r for r in inputs.gan_rows if r["model"].startswith("searched")]
    if not searched_rows or "fid" not in searched_rows[0]:
        inputs.shortfalls.append("The searched GAN is not materialized, so it cannot be compared.")
        return
    # Against the baselines at their budget: the curve row where the searched GAN trained longer.
    searched, compared = searched_rows[0], searched_rows[-1]
    better = [
        r["model"]
        for r in inputs.gan_rows
        if r not in searched_rows and r.get("fid", float("inf")) <= compared.get("fid", float("inf"))
    ]
    if better:
        inputs.shortfalls.append(
            f"GAN baselines with an FID as low as or lower than the searched GAN's: {', '.join(better)}."
        )
    if searched["fid"] > source.SEARCHED_GAN_FID:
        inputs.shortfalls.append(
            f"The searched GAN's FID is {searched['fid']:.2f} ({inputs.gan_extractor}); the source reported "
            f"{source.SEARCHED_GAN_FID} (Inception) after 100 000 iterations."
        )


def _metrics_section(inputs: ReportInputs, report: Report) -> None:
    rows = []
    for scores in inputs.extractor_scores:
        published = source.EXTRACTOR_SCORES.get(scores.extractor, {})
        is_value = scores.inception_score
        agreement, real_agreement = scores.class_agreement, scores.real_agreement
        rows.append(
            [
                scores.extractor,
                scores.fid.value,
                published.get("fid", float("nan")),
                is_value.value if is_value else float("nan"),
                published.get("is", float("nan")),
                scores.kid.value,
                scores.kid.std,
                agreement.value if agreement else float("nan"),
                real_agreement.value if real_agreement else float("nan"),
                f"{scores.fid.num_real} real / {scores.fid.num_fake} synthetic",
                scores.kid.detail,
                scores.resize_mode,
                f"{scores.seconds:.1f} s",
                published.get("time", ""),
            ]
        )
        if agreement is not None and real_agreement is not None and agreement.value < real_agreement.value - 0.1:
            inputs.shortfalls.append(
                f"{scores.extractor}'s classifier assigns {agreement.value:.0%} of the synthetic images to the class "
                "they were generated for "
                f"({agreement.detail}; real images: {real_agreement.value:.0%}): the generator follows its class "
                "input weakly."
            )
    per_class = [
        [s.extractor, name, v.value, v.num_real, v.num_fake]
        for s in inputs.extractor_scores
        for name, v in s.class_fid.items()
    ] + [
        [s.extractor, name, f"n/a: {why}", "", ""]
        for s in inputs.extractor_scores
        for name, why in s.class_fid_skipped.items()
    ]
    report.add(
        "Synthetic image quality by feature extractor (source Table 1.7)",
        markdown_table(
            [
                "extractor",
                "FID",
                "source FID",
                "IS",
                "source IS",
                "KID",
                "KID std",
                "synthetic in their class",
                "real in their class",
                "images",
                "KID subsets",
                "resize",
                "time",
                "source time",
            ],
            rows,
        ),
        f"Inception-v3: {inputs.inception_status}. Reference images: the real test split, which neither the "
        "feature extractors nor the GAN trained on. 'In their class': the share of images the extractor's own "
        "classifier head assigns to the class they were generated for (real: their true class, which is the "
        "extractor's test accuracy and the ceiling a faithful generator reaches).",
        "Per-class FID:",
        markdown_table(["extractor", "class", "FID", "real", "synthetic"], per_class),
    )


def _kl_section(inputs: ReportInputs, report: Report) -> None:
    rows = [
        [
            c.class_name,
            c.kl,
            c.kl_real,
            c.kl_synthetic,
            *c.pixel["mse"],
            c.pixel["rmse"][0],
            c.pixel["psnr"][0],
            c.pixel["ssim"][0],
            c.exact_copies,
        ]
        for c in inputs.comparisons
    ]
    published = ", ".join(f"{k} {v}" for k, v in source.CLASS_KL.items())
    figures = [
        Figure(
            f"histogram_{i}",
            histogram_plot(c.real_histogram, c.synthetic_histogram, f"{c.class_name}: KL {c.kl:.4f}"),
            f"colour histograms, {c.class_name}",
        )
        for i, c in enumerate(inputs.comparisons)
    ]
    report.add(
        "Per-class colour-histogram KL and nearest-neighbour pixel metrics (source Table 4.5)",
        markdown_table(
            [
                "class",
                "KL(real‖synthetic)",
                "real",
                "synthetic",
                "MSE",
                "MSE std",
                "RMSE",
                "PSNR dB",
                "SSIM",
                "exact copies",
            ],
            rows,
        ),
        f"KL against the real test images, over 256 bins per channel, mean of R, G, B, up to "
        f"{source.KL_IMAGES_PER_SIDE} images per side. Pixel metrics: each synthetic image against its nearest real "
        "training image (the GAN's, where copies would come from) by MSE, values in [0, 1]. Source KL: "
        f"{published}.",
        *figures,
    )
    worst = max(source.CLASS_KL.values())
    above = [c.class_name for c in inputs.comparisons if c.kl > worst]
    if above:
        inputs.shortfalls.append(f"Colour-histogram KL above the source's largest ({worst}) for: {', '.join(above)}.")


def _classifier_section(inputs: ReportInputs, report: Report) -> None:
    rows = [[r.name, r.accuracy, r.low, r.high, r.balanced_accuracy, r.chance, r.note] for r in inputs.accuracy_rows]
    header = ["training data", "test accuracy", "95% low", "95% high", "balanced accuracy", "chance", "note"]
    blocks: list = [markdown_table(header, rows)]
    if inputs.accuracy_rows:
        blocks.append(
            Figure(
                "accuracy_intervals",
                accuracy_interval_plot(
                    [(r.name, r.accuracy, r.low, r.high) for r in inputs.accuracy_rows], "real test split"
                ),
                "accuracy with 95% intervals",
            )
        )
    results = inputs.extension
    if results is not None and results.gain is not None:
        blocks.append(
            f"Extended minus the real-only control with as many optimizer steps, {results.num_added} synthetic "
            f"images added: {results.gain.text(signed=True)} ({results.gain.method})."
        )
        if results.gain.low <= 0:
            inputs.shortfalls.append(
                "Adding synthetic images gives no accuracy gain whose interval (seeds and test images) excludes zero."
            )
    elif results is not None:
        blocks.append(f"No gain is reported: {results.no_gain_reason}.")
        inputs.shortfalls.append("No synthetic image was added to the real ones, so there is no gain to report.")
    gate_rows = [
        [name, "passed" if ok else "FAILED", "; ".join(reasons)] for name, (ok, reasons) in inputs.gates.items()
    ]
    blocks += [
        "Quality gates per class (a class that fails any gate adds no synthetic images):",
        markdown_table(["class", "gates", "why"], gate_rows),
    ]
    extended = next((r for r in inputs.accuracy_rows if r.name.startswith("real + synthetic")), None)
    if extended is not None and extended.accuracy < source.EXTENDED_ACCURACY:
        inputs.shortfalls.append(
            f"The extended classifier reaches {pct(extended.accuracy)}; the source reported "
            f"{pct(source.EXTENDED_ACCURACY)} with 16 000 synthetic images."
        )
    report.add("Real-only, extended (real + synthetic) and TSTR accuracy", *blocks)
    figures = [
        Figure(
            f"roc_{i}",
            roc_plot(
                r["curves"], r["auc"], r["micro_curve"], r["micro_auc"], class_names=inputs.class_names, title=label
            ),
            f"ROC curves, {label}",
        )
        for i, (label, r) in enumerate(inputs.roc.items())
    ]
    report.add("ROC curves on the real test split", *figures)


def _data_efficiency_section(inputs: ReportInputs, report: Report) -> None:
    rows = inputs.data_efficiency
    title = "Data efficiency (opt-in study)"
    if not rows:
        report.add(
            title,
            f"Not run: the study is opt-in (it repeats the search, the GAN and every classifier per training size). "
            f"Materialize `{inputs.dataset}/data_efficiency` to add its learning curve here.",
        )
        return
    report.add(
        title,
        "Each size takes the first N real training images of every class, searches and trains again on them, and "
        "tests on the same real test split; intervals are 95% over seeds and test images.",
        study_table(rows),
        Figure("data_efficiency", learning_curve(rows), "test accuracy by real training images per class"),
    )


def build_report(inputs: ReportInputs) -> Report:
    """All sections in reading order; the shortfalls section collects what each one found."""
    report = Report(f"bio-assets report: {inputs.dataset}")
    count_names = ("raw", "train", "val", "test", "augmented", "synthetic")
    counts = [[name, *[inputs.counts[name].get(k, 0) for k in count_names]] for name in inputs.class_names]
    counts.append(["all", *[sum(inputs.counts[n].get(k, 0) for n in inputs.class_names) for k in count_names]])
    report.add(
        "Dataset",
        markdown_table(["class", *count_names], counts),
        "Validation and test images are real and never augmented. The quality gates check synthetic images "
        "against the validation images; this report compares them with the test images, which nothing trained on.",
    )
    _does_it_work_section(inputs, report)
    _cnn_section(inputs, report)
    _gan_section(inputs, report)
    _metrics_section(inputs, report)
    _kl_section(inputs, report)
    _classifier_section(inputs, report)
    _data_efficiency_section(inputs, report)
    grids = [
        Figure(
            f"samples_{i}",
            image_grid_png(np.concatenate([real[:8], fake[:8]]), columns=8, max_images=16),
            f"{name}: real (top row) and synthetic (bottom row)",
        )
        for i, (name, (real, fake)) in enumerate(inputs.samples.items())
    ]
    report.add("Real and synthetic samples per class", *grids)
    report.add(
        "Where we do not reach the source",
        "\n".join(f"- {s}" for s in inputs.shortfalls) or "Every compared number reaches the source's.",
    )
    report.add(
        "Settings and seeds behind every number",
        markdown_table(
            ["asset", "settings"],
            [[asset, ", ".join(f"{k}={v}" for k, v in values.items())] for asset, values in inputs.settings],
        ),
    )
    return report
