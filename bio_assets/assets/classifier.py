"""The searched network trained from scratch on the augmented train split, tested once on the real test split."""

import time

import dagster as dg
import numpy as np
from pydantic import Field

from bio_assets.assets.common import asset_options, config_values, data_ins, run_settings
from bio_assets.assets.metadata import png_markdown
from bio_assets.core.cnn.architectures import architecture_spec
from bio_assets.core.cnn.dataset import ClassificationData, assemble
from bio_assets.core.cnn.evaluation import ClassifierRuns, train_and_test
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.classification import majority_rate
from bio_assets.core.metrics.intervals import accuracy_interval
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.reporting.plots import roc_plot
from bio_assets.core.search.outcome import SearchOutcome
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource

GROUP = "cnn_search"


class ClassifierConfig(dg.Config):
    architecture: str = Field(
        default="searched",
        description="'searched', 'CELL/MACRO' genotype codes, a torchvision model name, or 'package.module:factory'",
    )
    epochs: int | None = Field(
        default=None, description=f"unset: the dataset profile's value ({profile_help('classifier', 'epochs')})"
    )
    seeds: int | None = Field(
        default=None,
        description="independent trainings reported as mean ± std, with intervals over seeds and test images "
        f"({profile_help('classifier', 'seeds')})",
    )
    input_size: int | None = Field(
        default=None,
        description="pixels the network sees, 0: the dataset's resolution; unset: the profile's "
        f"({profile_help('classifier', 'input_size')})",
    )
    select_on_validation: bool | None = Field(
        default=None,
        description="keep the weights of the pass with the best validation accuracy, not the last (early stopping "
        f"for small data; {profile_help('classifier', 'select_on_validation', 'extended_classifier')})",
    )
    batch_size: int = 64
    optimizer: str = Field(default="adam", description="adam, sgd, rmsprop, nadam, adadelta, adagrad or adamax")
    learning_rate: float | None = Field(default=1e-3, description="unset: the optimizer's library default")
    channels: int = 32
    seed: int = 0


def confusion_markdown(confusion: np.ndarray, class_names: tuple[str, ...]) -> dg.MarkdownMetadataValue:
    header = "| true \\ predicted | " + " | ".join(class_names) + " |\n|---|" + "---|" * len(class_names)
    rows = [f"| {name} | " + " | ".join(str(v) for v in row) + " |" for name, row in zip(class_names, confusion)]
    return dg.MetadataValue.md("\n".join([header, *rows]))


def classifier_metadata(
    runs: ClassifierRuns, data: ClassificationData, spec: dict, started: float, compute: ComputeResource
) -> dict:
    """Test metrics as mean ± std over seeds, the accuracy's interval over seeds and test images, chance (the
    test split's majority-class rate), per-class AUC, ROC plot and confusion matrix of the first seed."""
    metadata: dict = {}
    for field in ("test_accuracy", "test_macro_f1", "test_auc_micro", "test_balanced_accuracy"):
        mean, std = runs.summary(field)
        metadata[field] = mean
        metadata[f"{field}_std"] = std
    interval = accuracy_interval(runs.test_correct())
    metadata["test_accuracy_ci_low"], metadata["test_accuracy_ci_high"] = (
        round(interval.low, 4),
        round(interval.high, 4),
    )
    metadata["test_accuracy_interval"] = interval.describe()
    metadata["chance"] = round(majority_rate(data.test.labels.numpy()), 4)
    roc = runs.first_roc
    metadata.update({f"auc_{data.class_names[k]}": v for k, v in roc["auc"].items()})
    metadata["roc"] = png_markdown(
        roc_plot(
            roc["curves"],
            roc["auc"],
            roc["micro_curve"],
            roc["micro_auc"],
            class_names=data.class_names,
            title="test ROC (first seed)",
        ),
        "ROC curves, test split",
    )
    metadata["confusion_matrix"] = confusion_markdown(runs.first_confusion, data.class_names)
    metadata["seeds"] = [r.seed for r in runs.runs]
    if any(r.selected_pass is not None for r in runs.runs):  # select_on_validation: which pass each seed kept
        metadata["selected_passes"] = [r.selected_pass for r in runs.runs]
        metadata["selected_val_accuracy"] = round(float(np.mean([r.val_accuracy for r in runs.runs])), 4)
    metadata["num_test_images"] = len(data.test.labels)
    metadata["num_train_images"] = len(data.train.labels)
    metadata["input_size"] = data.image_size
    metadata["architecture"] = dg.MetadataValue.json(spec)
    metadata["wall_seconds"] = round(time.perf_counter() - started, 1)
    metadata.update({f"compute_{k}": v for k, v in compute.describe().items()})
    return metadata


def build_classifier_asset(entry: DatasetEntry) -> dg.AssetsDefinition:
    dataset = entry.name
    ins = data_ins(dataset, "augmented_dataset", "image_splits", "macro_architecture", "searched_cell")

    @dg.asset(name="classifier", ins=ins, **asset_options(entry, GROUP, network=True))
    def classifier(
        context: dg.AssetExecutionContext,
        config: ClassifierConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        augmented_dataset: dict,
        image_splits: dict,
        macro_architecture: SearchOutcome,
        searched_cell: SearchOutcome,
    ) -> dg.MaterializeResult:
        """The searched network trained from scratch on the augmented train split and tested once on real images."""
        started = time.perf_counter()
        fields = ("epochs", "seeds", "input_size", "select_on_validation")
        values = run_settings(context, image_dataset.entry(dataset), "classifier", config_values(config, fields))
        data = assemble(augmented_dataset, image_splits).at_size(values["input_size"])
        searched = NetworkSpec(
            searched_cell.best_code, macro_architecture.best_code, config.channels, len(data.class_names)
        )
        spec = architecture_spec(config.architecture, len(data.class_names), config.channels, searched)
        params = TrainParams(
            epochs=values["epochs"],
            batch_size=config.batch_size,
            optimizer=config.optimizer,
            learning_rate=config.learning_rate,
            seed=config.seed,
            select_on_validation=values["select_on_validation"],
        )
        runs = train_and_test(
            spec,
            data,
            params,
            seeds=values["seeds"],
            device=compute.torch_device(),
            precision=compute.precision(),
            on_seed=lambda r: context.log.info(
                f"seed {r.seed}: test accuracy {r.test_accuracy:.4f}, macro F1 {r.test_macro_f1:.4f} "
                f"({r.train_seconds:.0f} s)"
            ),
        )
        spec_with_classes = {**spec, "class_names": list(data.class_names), "input_size": data.image_size}
        metadata = {
            **classifier_metadata(runs, data, spec, started, compute),
            "epochs": values["epochs"],
            **values.metadata(),
        }
        return dg.MaterializeResult(value=ModelWeights(runs.first_state_dict, spec_with_classes), metadata=metadata)

    return classifier
