"""The gan_search group, part 1: domain feature extractors and the two-stage GAN search."""

import math
import time

import dagster as dg
import numpy as np
import torch
from pydantic import Field

from bio_assets.assets.cnn_search import evaluation_logger
from bio_assets.assets.common import RunSettings, asset_options, config_values, data_ins, run_settings
from bio_assets.assets.data import class_set_key
from bio_assets.assets.gan_inputs import (
    GROUP,
    RECIPE_FIELDS,
    GanShapeConfig,
    data_version,
    reference_images,
    training_images,
)
from bio_assets.assets.metadata import png_markdown
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.cnn.training import Precision, TrainParams
from bio_assets.core.gan.genotypes import FIXED_DISCRIMINATOR, MAX_NODES, MIN_NODES
from bio_assets.core.gan.search import GanSearchData, GanSearchRequest, GanSearchRun, search_gan
from bio_assets.core.hardware import gan_precision_for
from bio_assets.core.io.storage import ModelWeights, load_weights
from bio_assets.core.metrics.extractors import EXTRACTOR_NAMES, pack_extractors, train_extractor, unpack_extractor
from bio_assets.core.metrics.fid import FeatureStatistics
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.reporting.plots import fitness_plot
from bio_assets.core.search.evolution import EvolutionParams
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.image_dataset import ImageDatasetResource
from resources.search_executor import SearchExecutorResource

SEARCH_FIELDS = ("population_size", "cycles", "sample_size", "epochs", "fid_samples")


class FeatureExtractorsConfig(dg.Config):
    biocnn1_epochs: int | None = Field(default=None, description=profile_help("feature_extractors", "biocnn1_epochs"))
    biocnn2_epochs: int | None = Field(default=None, description=profile_help("feature_extractors", "biocnn2_epochs"))
    width: int | None = Field(
        default=None,
        description=f"first block's channels; features have 8x this ({profile_help('feature_extractors', 'width')})",
    )
    learning_rate: float = 0.003
    biocnn1_batch_size: int = 128
    biocnn2_batch_size: int = 64
    seed: int = 0


class GanSearchConfig(GanShapeConfig):
    population_size: int | None = Field(
        default=None,
        description=f"random pairs before breeding ({profile_help('generator', 'population_size', 'discriminator')})",
    )
    cycles: int | None = Field(
        default=None,
        description="children bred after the population is full "
        f"({profile_help('generator', 'cycles', 'discriminator')})",
    )
    sample_size: int | None = Field(
        default=None, description=f"tournament size ({profile_help('generator', 'sample_size', 'discriminator')})"
    )
    epochs: int | None = Field(
        default=None,
        description="training epochs per candidate over the augmented train split "
        f"({profile_help('generator', 'epochs', 'discriminator')})",
    )
    fid_samples: int | None = Field(
        default=None,
        description="generated images per FID, in the real classes' proportions "
        f"({profile_help('generator', 'fid_samples', 'discriminator')})",
    )
    mutation_probability: float = 0.05
    strategy: str = "aging"
    min_nodes: int = MIN_NODES
    max_nodes: int = MAX_NODES
    fixed_discriminator: str = Field(default=FIXED_DISCRIMINATOR, description="stage 1's hand-set discriminator")
    top_k: int = 10


def build_feature_extractor_asset(entry: DatasetEntry) -> dg.AssetsDefinition:
    dataset = entry.name
    ins = data_ins(dataset, "augmented_dataset", "image_splits")

    @dg.asset(
        name="feature_extractors", ins=ins, deps=[class_set_key(dataset)], **asset_options(entry, GROUP, network=True)
    )
    def feature_extractors(
        context: dg.AssetExecutionContext,
        config: FeatureExtractorsConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        feature_extractor: FeatureExtractorResource,
        augmented_dataset: dict,
        image_splits: dict,
    ) -> dg.MaterializeResult:
        """Domain CNNs BioCNN-1 and BioCNN-2 trained on real train images, whose features replace Inception for FID."""
        started = time.perf_counter()
        names = ("biocnn1_epochs", "biocnn2_epochs", "width")
        values = run_settings(context, image_dataset.entry(dataset), "feature_extractors", config_values(config, names))
        data = assemble(augmented_dataset, image_splits)
        trained = {}
        for name, epochs, batch in (
            ("biocnn1", values["biocnn1_epochs"], config.biocnn1_batch_size),
            ("biocnn2", values["biocnn2_epochs"], config.biocnn2_batch_size),
        ):
            params = TrainParams(
                epochs=epochs, batch_size=batch, optimizer="adam", learning_rate=config.learning_rate, seed=config.seed
            )
            trained[name] = train_extractor(
                name,
                data.train,
                data.val,
                num_classes=len(data.class_names),
                width=values["width"],
                params=params,
                device=compute.torch_device(),
                precision=compute.precision(),
            )
            context.log.info(
                f"{name}: validation accuracy {trained[name].val_accuracy:.4f} after {epochs} epochs "
                f"({trained[name].seconds:.0f} s)"
            )
        tensors, spec = pack_extractors(trained)
        metadata = {f"val_accuracy_{n}": t.val_accuracy for n, t in trained.items()}
        metadata.update({f"epochs_{n}": values[f"{n}_epochs"] for n in trained})
        metadata.update(
            {
                "feature_dim": 8 * values["width"],
                "input_size": int(data.train.images.shape[1]),
                "num_train_images": len(data.train.labels),
                "inception_v3": feature_extractor.inception_status(),
                "wall_seconds": round(time.perf_counter() - started, 1),
                **values.metadata(),
            }
        )
        return dg.MaterializeResult(
            value=ModelWeights(tensors, {**spec, "class_names": list(data.class_names)}), metadata=metadata
        )

    return feature_extractors


def search_data(
    config: GanSearchConfig,
    size: int,
    *,
    extractors: ModelWeights,
    resource: FeatureExtractorResource,
    compute: ComputeResource,
    augmented: dict,
    splits: dict,
) -> GanSearchData:
    if config.extractor not in EXTRACTOR_NAMES:
        raise ValueError(
            f"the search's extractor must be one of {EXTRACTOR_NAMES} (trained here), got {config.extractor!r}"
        )
    train, real = training_images(augmented, size), reference_images(splits, size)
    extractor = resource.serve(config.extractor, extractors, compute.torch_device())
    reference = FeatureStatistics.of(extractor.features(real.images))
    state = unpack_extractor(extractors.state_dict, extractors.spec, config.extractor).state_dict()
    version = data_version(train.images, real.images, *state.values())
    return GanSearchData(
        train,
        reference,
        extractors.spec["extractors"][config.extractor],
        state,
        config.extractor,
        version,
        reference_counts=tuple(int(c) for c in torch.bincount(real.labels, minlength=real.num_classes)),
    )


def search_request(
    config: GanSearchConfig, values: RunSettings, stage: str, num_train: int, fixed_generator: str
) -> GanSearchRequest:
    evolution = EvolutionParams(
        values["population_size"],
        values["cycles"],
        min(values["sample_size"], values["population_size"]),
        config.mutation_probability,
        config.strategy,
        config.seed,
    )
    iterations = max(1, math.ceil(values["epochs"] * num_train / values["batch_size"]))
    training = config.recipe(values).params(
        iterations=iterations, batch_size=values["batch_size"], checkpoint_every=iterations, seed=config.seed
    )
    return GanSearchRequest(
        stage,
        evolution,
        training,
        fixed_generator,
        config.fixed_discriminator,
        values["generator_width"],
        values["discriminator_width"],
        values["image_size"],
        values["fid_samples"],
        config.min_nodes,
        config.max_nodes,
    )


def top_k_table(run: GanSearchRun, k: int) -> dg.TableMetadataValue:
    best, seen = [], set()
    for e in sorted(run.result.history, key=lambda e: (-e.fitness, e.index)):
        if e.key not in seen:
            seen.add(e.key)
            best.append(e)
    rows = [
        dg.TableRecord(
            {"rank": r, "evaluation": e.index + 1, "fid": round(-e.fitness, 4), "genotype": e.code, "origin": e.origin}
        )
        for r, e in enumerate(best[:k], start=1)
    ]
    columns = [
        dg.TableColumn(n, t)
        for n, t in (
            ("rank", "int"),
            ("evaluation", "int"),
            ("fid", "float"),
            ("genotype", "string"),
            ("origin", "string"),
        )
    ]
    return dg.MetadataValue.table(rows, schema=dg.TableSchema(columns=columns))


def stage_result(
    run: GanSearchRun,
    request: GanSearchRequest,
    data: GanSearchData,
    *,
    class_names: list[str],
    top_k: int,
    started: float,
    compute: ComputeResource,
) -> tuple[ModelWeights, dict]:
    """The best network of the stage (weights + spec with history) and the asset metadata."""
    tensors, saved = load_weights(run.best_weights)
    role = request.stage
    best = run.result.best
    fids = np.array([-e.fitness for e in run.result.history])
    cached = np.array([e.cached for e in run.result.history])
    spec = {
        **saved[role],
        "fid": saved["fid"],
        "class_names": class_names,
        "other_network": saved["discriminator" if role == "generator" else "generator"],
        "history": {"codes": [e.code for e in run.result.history], "fid": fids.tolist(), "cached": cached.tolist()},
        "data_version": data.version,
        "candidate_settings_hash": run.candidate_settings_hash,
        "best_weights_file": str(run.best_weights),
    }
    metadata = {
        "genotype": best.code,
        "fid": round(-best.fitness, 4),
        "fid_provenance": dg.MetadataValue.json(saved["fid"]),
        "num_evaluations": len(run.result.history),
        "num_trainings": run.result.num_trainings,
        "top_k": top_k_table(run, top_k),
        "fitness_plot": png_markdown(
            fitness_plot(
                fids,
                cached,
                f"{role} search ({request.evolution.strategy})",
                "FID (lower is better)",
                higher_is_better=False,
            ),
            "FID over evaluations",
        ),
        "iterations_per_candidate": request.training.iterations,
        "population_size": request.evolution.population_size,
        "cycles": request.evolution.cycles,
        "image_size": request.image_size,
        "fixed_network": request.fixed_discriminator if role == "generator" else request.fixed_generator,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "state_file": dg.MetadataValue.path(str(run.state_path)),
        **{f"compute_{k}": v for k, v in compute.describe().items()},
    }
    return ModelWeights({k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(role + ".")}, spec), metadata


def build_gan_search_assets(entry: DatasetEntry) -> list[dg.AssetsDefinition]:
    dataset = entry.name
    inputs = data_ins(dataset, "augmented_dataset", "image_splits", "feature_extractors")
    common = asset_options(entry, GROUP, network=True)

    def run_stage(
        context,
        config,
        stage,
        *,
        compute,
        image_dataset,
        feature_extractor,
        search_executor,
        augmented,
        splits,
        extractors,
        fixed_generator="",
        initial_state=None,
    ):
        started = time.perf_counter()
        values = config.settings(context, image_dataset.entry(dataset), stage, (*SEARCH_FIELDS, *RECIPE_FIELDS))
        data = search_data(
            config,
            values["image_size"],
            extractors=extractors,
            resource=feature_extractor,
            compute=compute,
            augmented=augmented,
            splits=splits,
        )
        request = search_request(config, values, stage, len(data.train.labels), fixed_generator)
        logger = evaluation_logger(context, started, lambda e: f"FID {-e.fitness:.3f}")
        with search_executor.runtime(dataset, compute, precision=gan_precision(compute), on_evaluation=logger) as rt:
            run = search_gan(data, request, rt, initial_state=initial_state)
        value, metadata = stage_result(
            run, request, data, class_names=sorted(augmented), top_k=config.top_k, started=started, compute=compute
        )
        return value, {**metadata, **values.metadata()}

    @dg.asset(name="generator", ins=inputs, deps=[class_set_key(dataset)], **common)
    def generator(
        context: dg.AssetExecutionContext,
        config: GanSearchConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        feature_extractor: FeatureExtractorResource,
        search_executor: SearchExecutorResource,
        augmented_dataset: dict,
        image_splits: dict,
        feature_extractors: ModelWeights,
    ) -> dg.MaterializeResult:
        """Stage 1 of the GAN search: the generator (architecture and weights) with the lowest FID."""
        value, metadata = run_stage(
            context,
            config,
            "generator",
            compute=compute,
            image_dataset=image_dataset,
            feature_extractor=feature_extractor,
            search_executor=search_executor,
            augmented=augmented_dataset,
            splits=image_splits,
            extractors=feature_extractors,
        )
        return dg.MaterializeResult(value=value, metadata=metadata)

    @dg.asset(name="discriminator", ins={**inputs, **data_ins(dataset, "generator")}, **common)
    def discriminator(
        context: dg.AssetExecutionContext,
        config: GanSearchConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        feature_extractor: FeatureExtractorResource,
        search_executor: SearchExecutorResource,
        augmented_dataset: dict,
        image_splits: dict,
        feature_extractors: ModelWeights,
        generator: ModelWeights,
    ) -> dg.MaterializeResult:
        """Stage 2 of the GAN search: the discriminator with the lowest FID beside the best generator."""
        value, metadata = run_stage(
            context,
            config,
            "discriminator",
            compute=compute,
            image_dataset=image_dataset,
            feature_extractor=feature_extractor,
            search_executor=search_executor,
            augmented=augmented_dataset,
            splits=image_splits,
            extractors=feature_extractors,
            fixed_generator=generator.spec["genotype"],
            initial_state={f"generator.{k}": v for k, v in generator.state_dict.items()},
        )
        return dg.MaterializeResult(
            value=value, metadata={**metadata, "generator_genotype": generator.spec["genotype"]}
        )

    return [generator, discriminator]


def gan_precision(compute: ComputeResource) -> Precision:
    """The precision GAN training runs in on ``compute``'s device (``gan_precision_for``)."""
    return gan_precision_for(compute.torch_device(), amp=compute.amp)
