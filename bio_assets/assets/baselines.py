"""Classic CNN baselines and the source's optimizer comparison, one static partition each."""

import time

import dagster as dg
from pydantic import Field

from bio_assets.assets.classifier import classifier_metadata
from bio_assets.assets.common import asset_options, config_values, data_ins, run_profile, run_settings
from bio_assets.assets.data import class_set_key
from bio_assets.core.cnn.baselines import BASELINES, OPTIMIZER_BATCH, SOURCE_OPTIMIZER_ACCURACY, baseline_defaults
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.cnn.evaluation import train_and_test
from bio_assets.core.cnn.optimizers import KERAS_DEFAULTS, OPTIMIZERS
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.io.storage import load_weights_file
from bio_assets.core.registry import DatasetEntry
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource

GROUP = "cnn_search"
BASELINE_FIELDS = ("epochs", "batch_size", "input_size", "seeds", "learning_rate", "precise_bn")


def model_partitions(chosen: tuple[str, ...], known: list[str], what: str) -> dg.StaticPartitionsDefinition:
    """One partition per model: the dataset's chosen subset, else every known model."""
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {known}")
    return dg.StaticPartitionsDefinition([name for name in known if name in chosen] if chosen else list(known))


class BaselineConfig(dg.Config):
    epochs: int | None = Field(
        default=None, description="unset: paper = the source's epochs per model (30/50); demo 8, as the classifier"
    )
    batch_size: int | None = Field(
        default=None, description="unset: paper = the source's batch per model (8..12); demo 32"
    )
    input_size: int | None = Field(
        default=None, description="unset: paper = the model's native input (32/224/227); demo: dataset resolution"
    )
    seeds: int | None = Field(default=None, description="paper 3, demo 1")
    optimizer: str = "adam"
    learning_rate: float | None = Field(
        default=None, description="unset: the model's (paper 1e-3; demo 1e-3, VGG-16 1e-4: it diverges at 1e-3)"
    )
    precise_bn: bool | None = Field(
        default=None,
        description="recompute BatchNorm statistics over the training images after training (unset: paper no, "
        "demo yes: a short run leaves slow running averages near their start)",
    )
    weights_path: str = Field(
        default="", description="local state_dict file to start from (e.g. ImageNet weights); empty: random init"
    )
    seed: int = 0


class OptimizerComparisonConfig(dg.Config):
    epochs: int | None = Field(default=None, description="paper 30, demo 3")
    seeds: int | None = Field(default=None, description="paper 3, demo 1")
    seed: int = 0


def build_baseline_assets(entry: DatasetEntry) -> list[dg.AssetsDefinition]:
    dataset = entry.name
    # Every class partition of the data, whichever model or optimizer partition runs.
    ins = data_ins(dataset, "augmented_dataset", "image_splits", every_class=True)
    models = model_partitions(entry.cnn_baselines, list(BASELINES), "CNN baselines")
    optimizers = model_partitions(entry.optimizers, list(OPTIMIZERS), "optimizers")

    def train_baseline(context, name, config, *, compute, current, data) -> dict:
        """One model partition: trained and tested, its metadata returned."""
        started = time.perf_counter()
        per_model = baseline_defaults(name, run_profile(context, current)[0])
        values = run_settings(
            context, current, "baseline_classifiers", config_values(config, BASELINE_FIELDS), fallback=per_model
        )
        spec = {"kind": "baseline", "name": name, "num_classes": len(data.class_names)}
        params = TrainParams(
            epochs=values["epochs"],
            batch_size=values["batch_size"],
            optimizer=config.optimizer,
            learning_rate=values["learning_rate"],
            input_size=values["input_size"] or None,
            seed=config.seed,
            precise_bn=bool(values["precise_bn"]),
        )
        initial = load_weights_file(config.weights_path) if config.weights_path else None
        runs = train_and_test(
            spec,
            data,
            params,
            seeds=values["seeds"],
            device=compute.torch_device(),
            precision=compute.precision(),
            on_seed=lambda r: context.log.info(f"{name} seed {r.seed}: test accuracy {r.test_accuracy:.4f}"),
            initial_state=initial,
        )
        metadata = classifier_metadata(runs, data, spec, started, compute)
        init = (
            f"weights from {config.weights_path}"
            if config.weights_path
            else "random (no local weights file configured; nothing downloaded)"
        )
        return {
            **metadata,
            "epochs": params.epochs,
            "batch_size": params.batch_size,
            "input_size": params.input_size or "dataset resolution",
            "init": init,
            "source_accuracy": BASELINES[name].source_accuracy,
            **values.metadata(),
        }

    @dg.asset(
        name="baseline_classifiers",
        ins=ins,
        deps=[class_set_key(dataset)],
        **asset_options(entry, GROUP, partitions=models, network=True, one_run=True),
    )
    def baseline_classifiers(
        context: dg.AssetExecutionContext,
        config: BaselineConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        augmented_dataset: dict,
        image_splits: dict,
    ) -> None:
        """A classic CNN (LeNet-5 to MobileNetV3) trained from random init and tested on the real test split."""
        current, data = image_dataset.entry(dataset), assemble(augmented_dataset, image_splits)
        for name in context.partition_keys:
            metadata = train_baseline(context, name, config, compute=compute, current=current, data=data)
            context.add_asset_metadata(metadata, partition_key=name)

    def train_with_optimizer(context, optimizer, config, *, compute, values, data) -> dict:
        """One optimizer partition: the source's fixed CNN trained with it; its metadata returned."""
        started = time.perf_counter()
        spec = {"kind": "baseline", "name": "source_fixed_cnn", "num_classes": len(data.class_names)}
        params = TrainParams(
            epochs=values["epochs"],
            batch_size=OPTIMIZER_BATCH,
            optimizer=optimizer,
            learning_rate=None,
            input_size=64,
            seed=config.seed,
            defaults="keras",
        )
        runs = train_and_test(
            spec, data, params, seeds=values["seeds"], device=compute.torch_device(), precision=compute.precision()
        )
        losses = runs.runs[0].epoch_losses
        curve = dg.MetadataValue.table(
            [dg.TableRecord({"epoch": i + 1, "train_loss": round(v, 5)}) for i, v in enumerate(losses)],
            schema=dg.TableSchema(columns=[dg.TableColumn("epoch", "int"), dg.TableColumn("train_loss", "float")]),
        )
        metadata = classifier_metadata(runs, data, spec, started, compute)
        return {
            **metadata,
            "training_curve": curve,
            "epochs": params.epochs,
            "learning_rate": KERAS_DEFAULTS[optimizer]["lr"],
            "optimizer_defaults": "TensorFlow/Keras, the source's library: "
            + ", ".join(f"{k} {v:g}" for k, v in KERAS_DEFAULTS[optimizer].items()),
            "source_accuracy": SOURCE_OPTIMIZER_ACCURACY[optimizer],
            **values.metadata(),
        }

    options = asset_options(entry, GROUP, partitions=optimizers, network=True, one_run=True)

    @dg.asset(name="optimizer_comparison", ins=ins, deps=[class_set_key(dataset)], **options)
    def optimizer_comparison(
        context: dg.AssetExecutionContext,
        config: OptimizerComparisonConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        augmented_dataset: dict,
        image_splits: dict,
    ) -> None:
        """The source's fixed CNN trained with one optimizer at its TensorFlow/Keras defaults, tested on real images."""
        values = run_settings(
            context, image_dataset.entry(dataset), "optimizer_comparison", config_values(config, ("epochs", "seeds"))
        )
        data = assemble(augmented_dataset, image_splits)
        for optimizer in context.partition_keys:
            metadata = train_with_optimizer(context, optimizer, config, compute=compute, values=values, data=data)
            context.add_asset_metadata(metadata, partition_key=optimizer)

    return [baseline_classifiers, optimizer_comparison]
