"""The synthesis group, part 2: the searched network retrained on real + synthetic images, the
train-on-synthetic / test-on-real (TSTR) score, and the gain over a real-only control trained
with the same settings."""

import time

import dagster as dg
from pydantic import Field

from bio_assets.assets.classifier import ClassifierConfig, classifier_metadata
from bio_assets.assets.common import asset_options, config_values, data_ins, run_settings
from bio_assets.assets.synthesis import GROUP, require_current_generator
from bio_assets.checks.gates import gate_status
from bio_assets.core.cnn.architectures import architecture_spec
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.cnn.extension import ExtensionStudy, extension_study, synthetic_images
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import KERAS_DEFAULTS, TrainParams
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.search.outcome import SearchOutcome
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource


class ExtendedClassifierConfig(ClassifierConfig):
    epochs: int | None = Field(
        default=None, description="unset: the dataset profile's value (paper 100, demo 6: as the demo classifier)"
    )
    optimizer: str | None = Field(
        default=None, description="unset: the profile's (paper adagrad, as the source's retraining; demo adam)"
    )
    learning_rate: float | None = Field(
        default=None, description="unset: the optimizer's TensorFlow/Keras default (Adagrad and Adam 0.001)"
    )
    synthetic_per_class: int | None = Field(
        default=None,
        description="synthetic images per class added to the real ones (the first of each class; 0: all; TSTR "
        "always trains on all); unset: the profile's (paper all, demo 120: as many as the real augmented images)",
    )
    tstr: bool = Field(default=True, description="also train on synthetic images only and test on the real test split")
    bootstrap_samples: int = Field(
        default=2000, description="paired bootstrap resamples of the test split for the accuracy gain's interval"
    )
    require_gates: bool = Field(
        default=True, description="leave out the synthetic images of every class whose quality gates did not all pass"
    )


def study_metadata(study: ExtensionStudy, *, samples: int, tstr_asked: bool = True) -> dict:
    """The control's and TSTR's accuracies (or why TSTR was skipped) and the gain over the control
    with its interval."""
    gain = study.gain
    metadata: dict = {
        "control_accuracy": study.control.summary("test_accuracy")[0],
        "control_accuracy_std": study.control.summary("test_accuracy")[1],
        "accuracy_gain": round(gain["difference"], 4),
        "accuracy_gain_ci_low": round(gain["low"], 4),
        "accuracy_gain_ci_high": round(gain["high"], 4),
        "accuracy_gain_interval": f"{gain['level']:.0%} paired bootstrap over "
        f"{len(study.control.runs[0].test_correct)} test images, {samples} resamples; against the real-only "
        f"control trained with the same settings, mean over {len(study.control.runs)} seed(s)",
    }
    if study.tstr is not None:
        for field in ("test_accuracy", "test_macro_f1"):
            mean, std = study.tstr.summary(field)
            name = f"tstr_{field.removeprefix('test_')}"
            metadata[name], metadata[f"{name}_std"] = mean, std
        metadata["tstr_num_test_images"] = study.tstr_num_test_images
    else:
        metadata["tstr_skipped"] = "turned off in config" if not tstr_asked else "no class passed its quality gates"
    return metadata


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

    @dg.asset(name="extended_classifier", ins=ins, **asset_options(entry, GROUP, network=True))
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
        """The searched network on real + gated synthetic images, a same-settings real-only control, and TSTR."""
        started = time.perf_counter()
        fields = ("epochs", "seeds", "optimizer", "input_size", "synthetic_per_class")
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
        )  # fmt: skip
        study = extension_study(
            spec, data, fake, params, seeds=values["seeds"], device=compute.torch_device(),
            precision=compute.precision(), tstr=config.tstr and bool(used), bootstrap_samples=config.bootstrap_samples,
            extension_per_class=values["synthetic_per_class"],
            on_seed=lambda what, r: context.log.info(f"{what} seed {r.seed}: test accuracy {r.test_accuracy:.4f}"),
        )  # fmt: skip
        metadata = classifier_metadata(study.extended, study.extended_data, spec, started, compute)
        metadata.update(study_metadata(study, samples=config.bootstrap_samples, tstr_asked=config.tstr))
        metadata.update(
            {
                **{name: values[name] for name in ("epochs", "optimizer", "synthetic_per_class")},
                "learning_rate": params.learning_rate or KERAS_DEFAULTS[values["optimizer"]]["lr"],
                "classes_with_synthetic": used,
                "num_synthetic_images": int(len(fake.labels)),
                "num_synthetic_images_added": len(study.extended_data.train.labels) - len(data.train.labels),
                "excluded_classes": excluded,
                "wall_seconds": round(time.perf_counter() - started, 1),
                "trained_gan_run": gan_run,
                **values.metadata(),
            }
        )
        stored = {**spec, "class_names": list(data.class_names), "input_size": data.image_size}
        return dg.MaterializeResult(value=ModelWeights(study.extended.first_state_dict, stored), metadata=metadata)

    return extended_classifier
