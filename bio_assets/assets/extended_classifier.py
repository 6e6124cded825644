"""The synthesis group, part 2: the searched network retrained on real + synthetic images, the
train-on-synthetic / test-on-real (TSTR) score, and the gain over the real-only classifier."""

import time

import dagster as dg
import numpy as np
import torch
from pydantic import Field

from bio_assets.assets.classifier import ClassifierConfig, classifier_metadata
from bio_assets.assets.common import asset_options, config_values, data_ins, run_settings
from bio_assets.assets.synthesis import GROUP, require_current_generator
from bio_assets.checks.gates import gate_status
from bio_assets.core.cnn.architectures import architecture_spec, build_architecture, load_classifier
from bio_assets.core.cnn.dataset import ClassificationData, assemble
from bio_assets.core.cnn.evaluation import ClassifierRuns, train_and_test
from bio_assets.core.cnn.extension import extended, paired_bootstrap, synthetic_images, synthetic_only
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import TrainParams, predict_probabilities
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.search.outcome import SearchOutcome
from bio_assets.core.seeding import derive_seed
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource


class ExtendedClassifierConfig(ClassifierConfig):
    epochs: int | None = Field(
        default=None, description="unset: the dataset profile's value (paper 100, demo 6: as the demo classifier)"
    )
    tstr: bool = Field(default=True, description="also train on synthetic images only and test on the real test split")
    bootstrap_samples: int = Field(
        default=2000, description="paired bootstrap resamples of the test split for the accuracy gain's interval"
    )
    require_gates: bool = Field(
        default=True, description="leave out the synthetic images of every class whose quality gates did not all pass"
    )


def correct_on_test(model: torch.nn.Module, data: ClassificationData, compute: ComputeResource) -> np.ndarray:
    """1.0 where the model's top class is the true one, per real test image ``(N,)``."""
    probabilities = predict_probabilities(
        model, data.test.images, compute.torch_device(), precision=compute.precision()
    )
    return (probabilities.argmax(1) == data.test.labels.numpy()).astype(np.float64)


def gain_metadata(
    runs: ClassifierRuns,
    spec: dict,
    classifier: ModelWeights,
    data: ClassificationData,
    *,
    compute: ComputeResource,
    samples: int,
    seed: int,
) -> dict:
    """The extended model's accuracy minus the real-only ``classifier``'s on the same test images.

    With a paired bootstrap interval."""
    real_model, real_classes = load_classifier(classifier.state_dict, classifier.spec)
    if real_classes != data.class_names:
        raise ValueError(
            f"the classifier was trained on classes {list(real_classes)}, the data now has {list(data.class_names)}; "
            "re-materialize classifier"
        )
    model = build_architecture(spec)
    model.load_state_dict(runs.first_state_dict)
    real_correct = correct_on_test(real_model.to(compute.torch_device()), data, compute)
    interval = paired_bootstrap(
        correct_on_test(model.to(compute.torch_device()), data, compute),
        real_correct,
        samples,
        np.random.default_rng(derive_seed(seed, "bootstrap")),
    )
    return {
        "real_only_accuracy": float(real_correct.mean()),
        "accuracy_gain": round(interval["difference"], 4),
        "accuracy_gain_ci_low": round(interval["low"], 4),
        "accuracy_gain_ci_high": round(interval["high"], 4),
        "accuracy_gain_interval": f"{interval['level']:.0%} paired bootstrap over {len(real_correct)} test images, "
        f"{samples} resamples; first seed of each model",
    }


def build_extended_classifier_asset(entry: DatasetEntry) -> dg.AssetsDefinition:
    dataset = entry.name
    names = ("augmented_dataset", "image_splits", "synthetic_dataset", "macro_architecture", "searched_cell")
    ins = data_ins(dataset, *names, "classifier")

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
        classifier: ModelWeights,
    ) -> dg.MaterializeResult:
        """The searched network trained on real plus gated synthetic images and tested on real ones, with TSTR."""
        started = time.perf_counter()
        values = run_settings(
            context, image_dataset.entry(dataset), "extended_classifier", config_values(config, ("epochs", "seeds"))
        )
        data = assemble(augmented_dataset, image_splits)
        gan_run = require_current_generator(context.instance, dataset, sorted(synthetic_dataset))
        gates = {
            name: gate_status(context.instance, dataset, name) if config.require_gates else (True, [])
            for name in data.class_names
        }
        used = [name for name in data.class_names if gates[name][0] and name in synthetic_dataset]
        for name in sorted(set(data.class_names) - set(used)):
            context.log.warning(
                f"class {name}: synthetic images left out: {'; '.join(gates[name][1]) or 'not materialized'}"
            )
        fake = synthetic_images(data, synthetic_dataset, used)
        spec = architecture_spec(
            "searched",
            len(data.class_names),
            config.channels,
            NetworkSpec(searched_cell.best_code, macro_architecture.best_code, config.channels, len(data.class_names)),
        )
        params = TrainParams(
            epochs=values["epochs"],
            batch_size=config.batch_size,
            optimizer=config.optimizer,
            learning_rate=config.learning_rate,
            seed=config.seed,
        )
        device, precision = compute.torch_device(), compute.precision()

        def log(what: str):
            return lambda r: context.log.info(
                f"{what} seed {r.seed}: test accuracy {r.test_accuracy:.4f} ({r.train_seconds:.0f} s)"
            )

        real_and_synthetic = extended(data, fake)
        runs = train_and_test(
            spec,
            real_and_synthetic,
            params,
            seeds=values["seeds"],
            device=device,
            precision=precision,
            on_seed=log("real + synthetic"),
        )
        metadata = classifier_metadata(runs, real_and_synthetic, spec, started, compute)
        metadata.update(
            gain_metadata(
                runs, spec, classifier, data, compute=compute, samples=config.bootstrap_samples, seed=config.seed
            )
        )
        if config.tstr and used:
            tstr_data = synthetic_only(data, fake)
            tstr = train_and_test(
                spec, tstr_data, params, seeds=values["seeds"], device=device, precision=precision, on_seed=log("TSTR")
            )
            for field in ("test_accuracy", "test_macro_f1"):
                mean, std = tstr.summary(field)
                metadata[f"tstr_{field.removeprefix('test_')}"], metadata[f"tstr_{field.removeprefix('test_')}_std"] = (
                    mean,
                    std,
                )
            metadata["tstr_num_test_images"] = int(len(tstr_data.test.labels))
        else:
            metadata["tstr_skipped"] = (
                "turned off in config" if not config.tstr else "no class passed its quality gates"
            )
        excluded = [
            {"class": name, "reasons": "; ".join(gates[name][1]) or "not materialized"}
            for name in data.class_names
            if name not in used
        ]
        metadata.update(
            {
                "epochs": values["epochs"],
                "classes_with_synthetic": used,
                "num_synthetic_images": int(len(fake.labels)),
                "excluded_classes": dg.MetadataValue.md(
                    "\n".join(
                        ["| class | why |", "|---|---|", *[f"| {e['class']} | {e['reasons']} |" for e in excluded]]
                    )
                    if excluded
                    else "none"
                ),
                "wall_seconds": round(time.perf_counter() - started, 1),
                "trained_gan_run": gan_run,
                **values.metadata(),
            }
        )
        value = ModelWeights(
            runs.first_state_dict,
            {**spec, "class_names": list(data.class_names), "input_size": int(data.train.images.shape[1])},
        )
        return dg.MaterializeResult(value=value, metadata=metadata)

    return extended_classifier
