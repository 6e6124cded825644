"""Classic CNN baselines and the source's optimizer comparison, one static partition each."""

import time

import dagster as dg
from pydantic import Field

from bio_assets.assets.classifier import classifier_metadata
from bio_assets.assets.partitions import asset_key
from bio_assets.core.cnn.baselines import BASELINES, OPTIMIZER_BATCH, SOURCE_OPTIMIZER_ACCURACY, baseline_defaults
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.cnn.evaluation import train_and_test
from bio_assets.core.cnn.training import OPTIMIZERS, TrainParams
from bio_assets.core.io.storage import load_weights_file
from bio_assets.core.profiles import resolve_profile
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource

GROUP = "cnn_search"
BASELINE_PARTITIONS = dg.StaticPartitionsDefinition(list(BASELINES))
OPTIMIZER_PARTITIONS = dg.StaticPartitionsDefinition(list(OPTIMIZERS))


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
    learning_rate: float | None = 1e-3
    weights_path: str = Field(
        default="", description="local state_dict file to start from (e.g. ImageNet weights); empty: random init"
    )
    seed: int = 0


class OptimizerComparisonConfig(dg.Config):
    epochs: int | None = Field(default=None, description="paper 30, demo 3")
    seeds: int | None = Field(default=None, description="paper 3, demo 1")
    seed: int = 0


def _data_ins(dataset: str) -> dict:
    """Every class partition of the data, whichever model or optimizer partition runs."""
    return {
        name: dg.AssetIn(key=asset_key(dataset, name), partition_mapping=dg.AllPartitionMapping())
        for name in ("augmented_dataset", "image_splits")
    }


def build_baseline_assets(dataset: str) -> list[dg.AssetsDefinition]:
    common = dict(key_prefix=[dataset], group_name=GROUP, pool="gpu", code_version="1", ins=_data_ins(dataset))

    @dg.asset(name="baseline_classifiers", partitions_def=BASELINE_PARTITIONS, **common)
    def baseline_classifiers(
        context: dg.AssetExecutionContext,
        config: BaselineConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        augmented_dataset: dict,
        image_splits: dict,
    ) -> dg.MaterializeResult:
        """A classic CNN (LeNet-5 to MobileNetV3) trained from random init and tested on the real test split."""
        started = time.perf_counter()
        name = context.partition_key
        defaults = baseline_defaults(name, image_dataset.entry(dataset).profile)
        values = {k: getattr(config, k) if getattr(config, k) is not None else v for k, v in defaults.items()}
        data = assemble(augmented_dataset, image_splits)
        spec = {"kind": "baseline", "name": name, "num_classes": len(data.class_names)}
        params = TrainParams(
            epochs=values["epochs"],
            batch_size=values["batch_size"],
            optimizer=config.optimizer,
            learning_rate=config.learning_rate,
            input_size=values["input_size"] or None,
            seed=config.seed,
        )
        initial = load_weights_file(config.weights_path) if config.weights_path else None
        runs = train_and_test(
            spec,
            data,
            params,
            values["seeds"],
            compute.torch_device(),
            compute.precision(),
            on_seed=lambda r: context.log.info(f"{name} seed {r.seed}: test accuracy {r.test_accuracy:.4f}"),
            initial_state=initial,
        )
        metadata = classifier_metadata(runs, data, spec, started, compute)
        init = (
            f"weights from {config.weights_path}"
            if config.weights_path
            else "random (no local weights file configured; nothing downloaded)"
        )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "epochs": params.epochs,
                "batch_size": params.batch_size,
                "input_size": params.input_size or "dataset resolution",
                "init": init,
                "source_accuracy": BASELINES[name].source_accuracy,
            }
        )

    @dg.asset(name="optimizer_comparison", partitions_def=OPTIMIZER_PARTITIONS, **common)
    def optimizer_comparison(
        context: dg.AssetExecutionContext,
        config: OptimizerComparisonConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        augmented_dataset: dict,
        image_splits: dict,
    ) -> dg.MaterializeResult:
        """The source's fixed CNN trained with one optimizer at its library defaults, tested on the real test split."""
        started = time.perf_counter()
        optimizer = context.partition_key
        values = resolve_profile(
            {"epochs": config.epochs, "seeds": config.seeds},
            image_dataset.entry(dataset).profile,
            "optimizer_comparison",
        )
        data = assemble(augmented_dataset, image_splits)
        spec = {"kind": "baseline", "name": "source_fixed_cnn", "num_classes": len(data.class_names)}
        params = TrainParams(
            epochs=values["epochs"],
            batch_size=OPTIMIZER_BATCH,
            optimizer=optimizer,
            learning_rate=None,
            input_size=64,
            seed=config.seed,
        )
        runs = train_and_test(spec, data, params, values["seeds"], compute.torch_device(), compute.precision())
        losses = runs.runs[0].epoch_losses
        curve = dg.MetadataValue.table(
            [dg.TableRecord({"epoch": i + 1, "train_loss": round(v, 5)}) for i, v in enumerate(losses)],
            schema=dg.TableSchema(columns=[dg.TableColumn("epoch", "int"), dg.TableColumn("train_loss", "float")]),
        )
        metadata = classifier_metadata(runs, data, spec, started, compute)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "training_curve": curve,
                "epochs": params.epochs,
                "learning_rate": "library default",
                "source_accuracy": SOURCE_OPTIMIZER_ACCURACY[optimizer],
            }
        )

    return [baseline_classifiers, optimizer_comparison]
