"""The report's "Does it work?" answers: does the generator follow its class, do synthetic images
stand for their class (TSTR), and do they help the classifier, each read from what
``extended_classifier`` recorded, with its interval, against its true chance level, and with a
verdict only where at least ``VERDICT_SEEDS`` training seeds carry the interval."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bio_assets.core.metrics.intervals import VERDICT_SEEDS
from bio_assets.core.metrics.synthetic import ExtractorScores


def pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


@dataclass(frozen=True)
class Measured:
    """A recorded number with its interval, how the interval was made and over how many seeds."""

    value: float
    low: float
    high: float
    method: str
    seeds: int

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object], name: str, seeds: int) -> Measured | None:
        """``name`` with ``name_ci_low``, ``name_ci_high`` and ``name_interval`` (``interval_metadata``)."""
        if name not in metadata or f"{name}_ci_low" not in metadata:
            return None
        return cls(
            float(metadata[name]),
            float(metadata[f"{name}_ci_low"]),
            float(metadata[f"{name}_ci_high"]),
            str(metadata.get(f"{name}_interval", "")),
            seeds,
        )

    def text(self, signed: bool = False) -> str:
        if signed:
            return f"{self.value:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"
        return f"{pct(self.value)} [{pct(self.low)}, {pct(self.high)}]"

    @property
    def verdict_allowed(self) -> bool:
        return self.seeds >= VERDICT_SEEDS


@dataclass(frozen=True)
class ExtensionResults:
    """What ``extended_classifier`` recorded, as the report reads it."""

    seeds: int
    chance: float | None  # the test split's majority-class rate
    num_added: int
    classes_added: tuple[str, ...]
    extended: Measured | None
    control: Measured | None  # real only, as many optimizer steps
    control_equal_epochs: Measured | None
    control_balanced: float | None
    extended_balanced: float | None
    control_equal_epochs_balanced: float | None
    steps: int | None
    equal_epoch_steps: int | None
    gain: Measured | None
    gain_equal_epochs: Measured | None
    no_gain_reason: str
    tstr: Measured | None
    tstr_chance: float | None
    tstr_balanced: float | None
    tstr_images: int
    agreement: Measured | None  # the control's models on every synthetic image (GAN-test)
    agreement_chance: float | None
    agreement_by_class: dict[str, float] = field(default_factory=dict)
    generator_run: str = ""

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object]) -> ExtensionResults | None:
        if "control_accuracy" not in metadata:
            return None
        seeds = len(metadata.get("seeds") or [0])

        def get(name: str) -> Measured | None:
            return Measured.from_metadata(metadata, name, seeds)

        def number(name: str) -> float | None:
            return float(metadata[name]) if name in metadata else None

        return cls(
            seeds=seeds,
            chance=number("chance"),
            num_added=int(metadata.get("num_synthetic_images_added", 0)),
            classes_added=tuple(metadata.get("classes_with_synthetic") or ()),
            extended=get("extended_accuracy"),
            control=get("control_accuracy"),
            control_equal_epochs=get("control_equal_epochs_accuracy"),
            control_balanced=number("control_balanced_accuracy"),
            extended_balanced=number("extended_balanced_accuracy"),
            control_equal_epochs_balanced=number("control_equal_epochs_balanced_accuracy"),
            steps=int(metadata["control_steps"]) if "control_steps" in metadata else None,
            equal_epoch_steps=(
                int(metadata["control_equal_epochs_steps"]) if "control_equal_epochs_steps" in metadata else None
            ),
            gain=get("accuracy_gain"),
            gain_equal_epochs=get("accuracy_gain_equal_epochs"),
            no_gain_reason=str(metadata.get("accuracy_gain_skipped", "")),
            tstr=get("tstr_accuracy"),
            tstr_chance=number("tstr_chance"),
            tstr_balanced=number("tstr_balanced_accuracy"),
            tstr_images=int(metadata.get("tstr_num_test_images", 0)),
            agreement=get("class_agreement_real_classifier"),
            agreement_chance=number("class_agreement_real_classifier_chance"),
            agreement_by_class=dict(metadata.get("class_agreement_real_classifier_by_class") or {}),
            generator_run=str(metadata.get("trained_gan_run", "")),
        )


def _above_chance(measured: Measured, chance: float, yes: str, no: str) -> str:
    if not measured.verdict_allowed:
        return f"no verdict: {measured.seeds} seed(s), fewer than the {VERDICT_SEEDS} a verdict needs"
    return yes if measured.low > chance else no


def generator_line(results: ExtensionResults | None, scores: list[ExtractorScores]) -> str | None:
    """Does the generator follow its class? Judged by the real-only control (GAN-test), beside the
    domain extractors' own classifier heads."""
    judges = [
        f"{s.extractor} {pct(s.class_agreement.value)} (on real test images {pct(s.real_agreement.value)})"
        for s in scores
        if s.class_agreement is not None and s.real_agreement is not None
    ]
    beside = f" The domain extractors' heads, for comparison: {'; '.join(judges)}." if judges else ""
    if results is None or results.agreement is None:
        return None if not judges else f"- **Does the generator follow its class?** Not judged yet.{beside}"
    agreement, chance = results.agreement, results.agreement_chance or 0.0
    verdict = _above_chance(
        agreement, chance, "the generator follows its class", "the generator does not follow its class measurably"
    )
    return (
        f"- **Does the generator follow its class?** The real-only control classifier (trained on real images "
        f"only, {results.seeds} seeds) assigns {agreement.text()} of the synthetic images to the class they were "
        f"generated for (GAN-test; chance {pct(chance)}, the majority share of the classes generated; on real test "
        f"images it reaches {pct(results.control.value if results.control else None)}): {verdict}.{beside}"
    )


def tstr_line(results: ExtensionResults) -> str | None:
    if results.tstr is None:
        return None
    chance = results.tstr_chance or 0.0
    verdict = _above_chance(
        results.tstr, chance, "synthetic images carry their class's features", "they teach no more than chance"
    )
    return (
        f"- **Do synthetic images stand for their class?** A classifier trained on synthetic images only reaches "
        f"{results.tstr.text()} on the {results.tstr_images} real test images of the classes with synthetic images "
        f"(TSTR; balanced accuracy {pct(results.tstr_balanced)}; chance {pct(chance)}, the majority-class rate of "
        f"those images; {results.tstr.method}): {verdict}."
    )


def gain_line(results: ExtensionResults) -> str:
    if results.gain is None:
        return f"- **Does synthetic data help?** No verdict: {results.no_gain_reason or 'nothing was added'}."
    gain = results.gain
    if not gain.verdict_allowed:
        verdict = f"No verdict: {gain.seeds} seed(s), fewer than the {VERDICT_SEEDS} a verdict needs."
    elif gain.low > 0:
        verdict = "Synthetic data helped: the whole interval lies above zero."
    elif gain.high < 0:
        verdict = "Synthetic data hurt: the whole interval lies below zero."
    else:
        verdict = "We cannot tell a gain from no gain: the interval holds zero."
    classes = ", ".join(results.classes_added) or "none"
    line = (
        f"- **Does synthetic data help?** {results.num_added} synthetic images ({classes}) were added to the real "
        f"training images. Real + synthetic minus the real-only control trained for as many optimizer steps "
        f"({results.steps}) from the same initializations: {gain.text(signed=True)} ({gain.method}). {verdict}"
    )
    if results.gain_equal_epochs is not None:
        line += (
            f" Against a control trained for as many epochs instead ({results.equal_epoch_steps} steps): "
            f"{results.gain_equal_epochs.text(signed=True)}, which also counts the longer training."
        )
    return line


def generator_caveat(results: ExtensionResults | None) -> str:
    run = f" (trained_gan run {results.generator_run[:8]})" if results and results.generator_run else ""
    return (
        f"Every synthetic-image number here comes from one training of the GAN{run}: the intervals hold the "
        "classifiers' seeds and the test images, not the variation between GAN trainings."
    )
