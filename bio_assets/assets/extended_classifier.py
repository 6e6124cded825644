"""The synthesis group, part 2: the searched network retrained on real + synthetic images, the
train-on-synthetic / test-on-real (TSTR) score, the gain over a real-only control trained with as
many optimizer steps, and that control's judgement of the synthetic images (GAN-test)."""

import time

import dagster as dg
from pydantic import Field

from bio_assets.assets.classifier import ClassifierConfig, classifier_metadata
from bio_assets.assets.common import asset_options, config_values, data_ins, run_settings
from bio_assets.assets.data import class_set_key
from bio_assets.assets.synthesis import GROUP, require_current_generator
from bio_assets.checks.gates import gate_status
from bio_assets.core.cnn.architectures import architecture_spec
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.cnn.extension import ExtensionStudy, extension_study, synthetic_images
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.optimizers import KERAS_DEFAULTS
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.intervals import Interval, accuracy_interval
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.search.outcome import SearchOutcome
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource


class ExtendedClassifierConfig(ClassifierConfig):
    epochs: int | None = Field(
        default=None,
        description=f"unset: the dataset profile's value ({profile_help('extended_classifier', 'epochs')})",
    )
    seeds: int | None = Field(
        default=None,
        description="seeds of each training (extended, control, TSTR); a verdict needs 3 "
        f"({profile_help('extended_classifier', 'seeds')})",
    )
    input_size: int | None = Field(
        default=None,
        description="pixels the networks see, 0: the dataset's resolution "
        f"({profile_help('extended_classifier', 'input_size')})",
    )
    optimizer: str | None = Field(
        default=None,
        description="unset: the profile's (the source retrained with adagrad; "
        f"{profile_help('extended_classifier', 'optimizer')})",
    )
    learning_rate: float | None = Field(
        default=None, description="unset: the optimizer's TensorFlow/Keras default (Adagrad and Adam 0.001)"
    )
    synthetic_per_class: int | None = Field(
        default=None,
        description="synthetic images per class added to the real ones (the first of each class; 0: all; TSTR "
        f"always trains on all); unset: the profile's ({profile_help('extended_classifier', 'synthetic_per_class')})",
    )
    tstr: bool = Field(default=True, description="also train on synthetic images only and test on the real test split")
    equal_epoch_control: bool = Field(
        default=True,
        description="also train a real-only control for the same epochs (fewer optimizer steps than the extended "
        "model; the gain is measured against the control with the same steps)",
    )
    require_gates: bool = Field(
        default=True, description="leave out the synthetic images of every class whose quality gates did not all pass"
    )


def interval_metadata(name: str, interval: Interval | None) -> dict:
    """``name``, ``name_ci_low``, ``name_ci_high`` and ``name_interval`` (how it was made)."""
    if interval is None:
        return {}
    return {
        name: round(interval.value, 4),
        f"{name}_ci_low": round(interval.low, 4),
        f"{name}_ci_high": round(interval.high, 4),
        f"{name}_interval": interval.describe(),
    }


def study_metadata(study: ExtensionStudy, *, class_names: tuple[str, ...], tstr_asked: bool = True) -> dict:
    """Every arm's accuracy with its interval over seeds and test images, chance levels, the gain
    over the step-matched control (or why there is none), and the control's class agreement on
    the synthetic images (GAN-test)."""
    arms = {"extended": study.extended, "control": study.control, "control_equal_epochs": study.control_equal_epochs}
    metadata: dict = {"chance": round(study.chance, 4), "chance_rule": CHANCE_RULE}
    for name, runs in arms.items():
        if runs is None:
            continue
        metadata.update(interval_metadata(f"{name}_accuracy", accuracy_interval(runs.test_correct())))
        metadata[f"{name}_accuracy_std"] = round(runs.summary("test_accuracy")[1], 4)
        metadata[f"{name}_balanced_accuracy"] = round(runs.summary("test_balanced_accuracy")[0], 4)
        metadata[f"{name}_steps"] = runs.steps
    metadata["num_synthetic_images_added"] = study.num_added
    if study.gain is None:
        metadata["accuracy_gain_skipped"] = NO_GAIN
    metadata.update(interval_metadata("accuracy_gain", study.gain))
    metadata.update(interval_metadata("accuracy_gain_equal_epochs", study.gain_equal_epochs))
    if study.tstr is not None:
        metadata.update(interval_metadata("tstr_accuracy", accuracy_interval(study.tstr.test_correct())))
        metadata["tstr_accuracy_std"] = round(study.tstr.summary("test_accuracy")[1], 4)
        metadata["tstr_macro_f1"] = round(study.tstr.summary("test_macro_f1")[0], 4)
        metadata["tstr_balanced_accuracy"] = round(study.tstr.summary("test_balanced_accuracy")[0], 4)
        metadata["tstr_chance"] = round(study.tstr_chance, 4)
        metadata["tstr_num_test_images"] = len(study.tstr_test_labels)
    else:
        metadata["tstr_skipped"] = "turned off in config" if not tstr_asked else "no class passed its quality gates"
    if study.class_agreement is not None:
        metadata.update(interval_metadata("class_agreement_real_classifier", study.class_agreement))
        metadata["class_agreement_real_classifier_chance"] = round(study.agreement_chance, 4)
        metadata["class_agreement_real_classifier_by_class"] = dg.MetadataValue.json(
            {k: round(v, 4) for k, v in study.agreement_by_class(class_names).items()}
        )
    return metadata


CHANCE_RULE = "the majority-class rate of the test images scored (a constant answer reaches it)"
NO_GAIN = (
    "no synthetic image was added (no class has synthetic images that passed every quality gate): there is no "
    "gain to measure"
)


def gated_classes(
    context: dg.AssetExecutionContext, dataset: str, class_names: tuple[str, ...], synthetic: dict, require_gates: bool
) -> tuple[list[str], dg.MarkdownMetadataValue]:
    """The classes whose synthetic images are used (every gate passed), and a table of the others with the reasons."""
    gates = {
        name: gate_status(context.instance, dataset, name) if require_gates else (True, []) for name in class_names
    }
    used = [name for name in class_names if gates[name][0] and name in synthetic]
    rows = []
    for name in [n for n in class_names if n not in used]:
        reasons = "; ".join(gates[name][1]) or "not materialized"
        context.log.warning(f"class {name}: synthetic images left out: {reasons}")
        rows.append(f"| {name} | {reasons} |")
    return used, dg.MetadataValue.md("\n".join(["| class | why |", "|---|---|", *rows]) if rows else "none")


def build_extended_classifier_asset(entry: DatasetEntry) -> dg.AssetsDefinition:
    dataset = entry.name
    names = ("augmented_dataset", "image_splits", "synthetic_dataset", "macro_architecture", "searched_cell")
    ins = data_ins(dataset, *names)

    @dg.asset(
        name="extended_classifier", ins=ins, deps=[class_set_key(dataset)], **asset_options(entry, GROUP, network=True)
    )
    def extended_classifier(
        context: dg.AssetExecutionContext,
        config: ExtendedClassifierConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        augmented_dataset: dict,
        image_splits: dict,
        synthetic_dataset: dict,
        macro_architecture: SearchOutcome,
        searched_cell: SearchOutcome,
    ) -> dg.MaterializeResult:
        """The searched network on real + gated synthetic images, a real-only control with as many steps, and TSTR."""
        started = time.perf_counter()
        fields = ("epochs", "seeds", "optimizer", "input_size", "synthetic_per_class", "select_on_validation")
        values = run_settings(
            context, image_dataset.entry(dataset), "extended_classifier", config_values(config, fields)
        )
        data = assemble(augmented_dataset, image_splits).at_size(values["input_size"])
        gan_run = require_current_generator(context.instance, dataset, sorted(synthetic_dataset))
        used, excluded = gated_classes(context, dataset, data.class_names, synthetic_dataset, config.require_gates)
        fake = synthetic_images(data, synthetic_dataset, used)
        classes = len(data.class_names)
        network = NetworkSpec(searched_cell.best_code, macro_architecture.best_code, config.channels, classes)
        spec = architecture_spec("searched", classes, config.channels, network)
        params = TrainParams(
            epochs=values["epochs"], batch_size=config.batch_size, optimizer=values["optimizer"],
            learning_rate=config.learning_rate, seed=config.seed, defaults="keras",
            select_on_validation=values["select_on_validation"],
        )  # fmt: skip
        study = extension_study(
            spec, data, fake, params, seeds=values["seeds"], device=compute.torch_device(),
            precision=compute.precision(), tstr=config.tstr and bool(used),
            extension_per_class=values["synthetic_per_class"], equal_epoch_control=config.equal_epoch_control,
            judged=synthetic_images(data, synthetic_dataset, [n for n in data.class_names if n in synthetic_dataset]),
            on_seed=lambda what, r: context.log.info(
                f"{what} seed {r.seed}: test accuracy {r.test_accuracy:.4f} ({r.steps} steps)"
            ),
        )  # fmt: skip
        metadata = classifier_metadata(study.extended, study.extended_data, spec, started, compute)
        metadata.update(study_metadata(study, class_names=data.class_names, tstr_asked=config.tstr))
        metadata.update(
            {
                **{name: values[name] for name in ("epochs", "optimizer", "synthetic_per_class")},
                "learning_rate": params.learning_rate or KERAS_DEFAULTS[values["optimizer"]]["lr"],
                "classes_with_synthetic": used,
                "num_synthetic_images": int(len(fake.labels)),
                "excluded_classes": excluded,
                "wall_seconds": round(time.perf_counter() - started, 1),
                "trained_gan_run": gan_run,
                **values.metadata(),
            }
        )
        stored = {**spec, "class_names": list(data.class_names), "input_size": data.image_size}
        return dg.MaterializeResult(value=ModelWeights(study.extended.first_state_dict, stored), metadata=metadata)

    return extended_classifier
