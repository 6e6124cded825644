"""The gan_search group, part 2: the searched pair trained from scratch, and the classic GAN
baselines trained on the same images with the same iteration budget."""

import time
from collections.abc import Callable
from dataclasses import asdict

import dagster as dg
import numpy as np
import torch
from pydantic import Field

from bio_assets.assets.baselines import model_partitions
from bio_assets.assets.common import RunSettings, asset_options, data_ins
from bio_assets.assets.data import class_set_key
from bio_assets.assets.gan_inputs import (
    GROUP,
    RECIPE_FIELDS,
    GanShapeConfig,
    data_version,
    fid_metadata,
    reference_images,
    scorers,
    step_logger,
    training_images,
)
from bio_assets.assets.gan_search import gan_precision
from bio_assets.assets.metadata import image_grid_markdown, png_markdown
from bio_assets.core.gan.baselines import GAN_BASELINES, SEARCHED_SOURCE_FID, BaselineSpec, build_baseline
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.runs import ScoredGan, train_and_score
from bio_assets.core.gan.scoring import fid_curve_rows
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanRecipe
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.reporting.plots import curve_plot
from bio_assets.core.search.cache import settings_hash
from bio_assets.core.seeding import derive_seed
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.image_dataset import ImageDatasetResource
from resources.search_executor import SearchExecutorResource

RUN_FIELDS = ("iterations", "fid_every", "checkpoint_every", "fid_samples")


class GanTrainingConfig(GanShapeConfig):
    iterations: int | None = Field(
        default=None,
        description=f"generator steps ({profile_help('trained_gan', 'iterations', 'gan_baselines')})",
    )
    fid_every: int | None = Field(
        default=None,
        description="FID on the curve every this many iterations "
        f"({profile_help('trained_gan', 'fid_every', 'gan_baselines')})",
    )
    checkpoint_every: int | None = Field(
        default=None,
        description="atomic checkpoint interval; a killed run resumes from the last one "
        f"({profile_help('trained_gan', 'checkpoint_every', 'gan_baselines')})",
    )
    fid_samples: int | None = Field(
        default=None,
        description=f"generated images per FID ({profile_help('trained_gan', 'fid_samples', 'gan_baselines')})",
    )


def curve_table(curve: list[tuple[int, float]], source: dict[int, float] | None = None) -> dg.TableMetadataValue:
    rows = [
        {**row, "source_fid": source.get(row["iteration"], float("nan"))} if source is not None else row
        for row in fid_curve_rows(curve)
    ]
    names = ("iteration", "fid", "source_fid") if source is not None else ("iteration", "fid")
    schema = dg.TableSchema(columns=[dg.TableColumn(n, "int" if n == "iteration" else "float") for n in names])
    return dg.MetadataValue.table([dg.TableRecord(r) for r in rows], schema=schema)


def run_training(
    context,
    config: GanTrainingConfig,
    asset_name: str,
    *,
    dataset: str,
    build,
    identity: dict,
    compute,
    image_dataset,
    feature_extractor,
    search_executor,
    augmented,
    splits,
    extractors,
    recipe: Callable[[RunSettings], GanRecipe],
    recipe_fields: tuple[str, ...] = (),
) -> tuple[ScoredGan, dict, dict]:
    """Train ``build(values) -> (G, D)`` with checkpoints keyed by its settings.

    ``recipe(values)``: how the pair trains, from the resolved settings (which hold
    ``recipe_fields``). Returns the scored run, the resolved values and the metadata."""
    started = time.perf_counter()
    values = config.settings(context, image_dataset.entry(dataset), asset_name, (*RUN_FIELDS, *recipe_fields))
    recipe = recipe(values)
    device = compute.torch_device()
    data, real = training_images(augmented, values["image_size"]), reference_images(splits, values["image_size"])
    generator, discriminator = build(values, data.num_classes)
    params = recipe.params(
        iterations=values["iterations"],
        batch_size=values["batch_size"],
        checkpoint_every=values["checkpoint_every"],
        seed=config.seed,
    )
    fid_scorers = scorers(
        feature_extractor,
        extractors,
        real,
        samples=values["fid_samples"],
        device=device,
        seed=derive_seed(config.seed, "fid"),
    )
    identity = {
        **identity,
        "data_version": data_version(data.images, real.images),
        "extractors": settings_hash(extractors.spec),
    }
    # Every setting that shapes the run names its checkpoint, so a run with other learning
    # rates (say) starts fresh instead of meeting a checkpoint it may not resume.
    shaped_by = {"identity": identity, "values": dict(values.values), "params": asdict(params)}
    checkpoint = search_executor.state_dir(dataset) / asset_name / f"{settings_hash(shaped_by)}.safetensors"
    scored = train_and_score(
        generator,
        discriminator,
        data,
        params,
        device=device,
        scorers=fid_scorers,
        curve_extractor=config.extractor,
        fid_every=values["fid_every"],
        checkpoint_path=checkpoint,
        identity=identity,
        precision=gan_precision(compute),
        on_step=step_logger(context, values["iterations"], started),
    )
    report = scored.report
    metadata = {
        "fid": round(scored.fids[config.extractor].value, 4),
        "fid_extractor": config.extractor,
        **fid_metadata(scored.fids, feature_extractor),
        "iterations": report.iterations,
        "resumed_from_step": report.resumed_from_step,
        "iterations_per_second": round(report.iterations_per_second, 2),
        "fid_curve_plot": png_markdown(
            curve_plot({asset_name: report.curve}, f"{asset_name}: FID ({config.extractor}) over training"),
            "FID over iterations",
        ),
        "checkpoint": dg.MetadataValue.path(str(checkpoint)),
        "batch_size": values["batch_size"],
        "image_size": values["image_size"],
        "loss": recipe.loss,
        "optimizer": f"{recipe.optimizer}, lr G {recipe.generator_lr:g} / D {recipe.discriminator_lr:g}"
        + (f", betas {recipe.betas}" if recipe.optimizer == "adam" else ""),
        "wall_seconds": round(time.perf_counter() - started, 1),
        **{f"compute_{k}": v for k, v in compute.describe().items()},
        **values.metadata(),
    }
    return scored, values, metadata


def searched_specs(genotypes: dict[str, str], values: RunSettings, num_classes: int) -> dict[str, GanNetworkSpec]:
    """The searched generator and discriminator at this run's shape (and the AC-GAN head when it trains one)."""
    size = values["image_size"]
    return {
        "generator": GanNetworkSpec(
            "generator", genotypes["generator"], values["generator_width"], size, num_classes
        ),
        "discriminator": GanNetworkSpec(
            "discriminator", genotypes["discriminator"], values["discriminator_width"], size, num_classes,
            auxiliary_classifier=values["auxiliary_classifier_weight"] > 0,
        ),
    }  # fmt: skip


def stored_generator_spec(
    specs: dict[str, GanNetworkSpec],
    scored: ScoredGan,
    values: RunSettings,
    *,
    class_names: list[str],
    config: GanTrainingConfig,
    num_train: int,
) -> dict:
    """What is stored beside the generator's weights: its spec, the discriminator's, the FID, and
    the catalog's training_parameters row (epochs in the source's unit: passes over the train images)."""
    return {
        **specs["generator"].to_json(),
        "class_names": class_names,
        "discriminator": specs["discriminator"].to_json(),
        "fid": scored.fids[config.extractor].to_json(),
        "iterations": scored.report.iterations,
        "curve": scored.report.curve,
        "ema": config.ema_decay > 0,
        # Beyond the catalog's training_parameters columns: where the demo departs from the source.
        "conditioning": {
            "conditioning_lr_multiplier": values["conditioning_lr_multiplier"],
            "auxiliary_classifier_weight": values["auxiliary_classifier_weight"],
        },
        "training": {
            "g_optimizer": "adam",
            "d_optimizer": "adam",
            "loss": "hinge",
            "batch_size": values["batch_size"],
            "iterations": scored.report.iterations,
            "epochs": round(scored.report.iterations * values["batch_size"] / num_train, 3),
            "g_lr": values["generator_lr"],
            "d_lr": values["discriminator_lr"],
        },
    }


def build_gan_training_assets(entry: DatasetEntry) -> list[dg.AssetsDefinition]:
    dataset = entry.name
    names = ("augmented_dataset", "image_splits", "feature_extractors")
    common = asset_options(entry, GROUP, network=True)
    pair_ins = {
        **data_ins(dataset, *names),
        **data_ins(dataset, "generator", "discriminator"),
    }

    @dg.asset(name="trained_gan", ins=pair_ins, **common)
    def trained_gan(
        context: dg.AssetExecutionContext,
        config: GanTrainingConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        feature_extractor: FeatureExtractorResource,
        search_executor: SearchExecutorResource,
        augmented_dataset: dict,
        image_splits: dict,
        feature_extractors: ModelWeights,
        generator: ModelWeights,
        discriminator: ModelWeights,
    ) -> dg.MaterializeResult:
        """The searched generator and discriminator trained together from scratch, with EMA weights and an FID curve."""
        specs: dict[str, GanNetworkSpec] = {}
        genotypes = {"generator": generator.spec["genotype"], "discriminator": discriminator.spec["genotype"]}

        def build(values, num_classes):
            specs.update(searched_specs(genotypes, values, num_classes))
            seed = derive_seed(config.seed, "trained_gan")
            return build_seeded_gan(specs["generator"], seed), build_seeded_gan(specs["discriminator"], seed + 1)

        scored, values, metadata = run_training(
            context, config, "trained_gan", dataset=dataset, build=build, identity=genotypes, compute=compute,
            image_dataset=image_dataset, feature_extractor=feature_extractor, search_executor=search_executor,
            augmented=augmented_dataset, splits=image_splits, extractors=feature_extractors,
            recipe=config.recipe, recipe_fields=RECIPE_FIELDS,
        )  # fmt: skip
        class_names = sorted(augmented_dataset)
        metadata.update(
            {
                "generator_genotype": genotypes["generator"],
                "discriminator_genotype": genotypes["discriminator"],
                "source_fid": SEARCHED_SOURCE_FID,
                "fid_curve": curve_table(scored.report.curve),
                # The curve by iteration, so a baseline trained for fewer iterations compares at its budget.
                "fid_by_iteration": dg.MetadataValue.json(
                    {str(step): round(float(fid), 4) for step, fid in scored.report.curve}
                ),
                **{
                    f"samples_{class_names[k]}": image_grid_markdown(images.numpy(), f"generated {class_names[k]}")
                    for k, images in scored.samples.items()
                },
            }
        )
        num_train = sum(len(s) for s in augmented_dataset.values())
        spec = stored_generator_spec(specs, scored, values, class_names=class_names, config=config, num_train=num_train)
        return dg.MaterializeResult(
            value=ModelWeights(dict(scored.report.sampler.state_dict()), spec), metadata=metadata
        )

    # Every model partition reads every class partition.
    every_class = data_ins(dataset, *names, every_class=True)
    models = model_partitions(entry.gan_baselines, list(GAN_BASELINES), "GAN baselines")

    def train_gan_baseline(
        context,
        name,
        config,
        *,
        compute,
        image_dataset,
        feature_extractor,
        search_executor,
        augmented,
        splits,
        extractors,
    ) -> tuple[ModelWeights, dict]:
        """One model partition trained and scored: its generator weights and metadata."""
        baseline = GAN_BASELINES[name]
        specs = {}

        def build(values, num_classes):
            specs["spec"] = BaselineSpec(
                name, values["image_size"], values["generator_width"], values["discriminator_width"]
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(config.seed, "gan_baseline", name))
                return build_baseline(specs["spec"])

        scored, values, metadata = run_training(
            context,
            config,
            "gan_baselines",
            dataset=dataset,
            build=build,
            identity={"baseline": name},
            compute=compute,
            image_dataset=image_dataset,
            feature_extractor=feature_extractor,
            search_executor=search_executor,
            augmented=augmented,
            splits=splits,
            extractors=extractors,
            recipe=lambda values: baseline.recipe,
        )
        spec = {
            **specs["spec"].to_json(),
            "fid": scored.fids[config.extractor].to_json(),
            "iterations": scored.report.iterations,
            "curve": scored.report.curve,
        }
        source_at_budget = baseline.source_fid.get(values["iterations"], float("nan"))
        metadata.update(
            {
                "source_fid_curve": dg.MetadataValue.json({str(k): v for k, v in baseline.source_fid.items()}),
                "source_note": baseline.source_note,
                "source_fid_at_budget": source_at_budget,
                "fid_curve": curve_table(scored.report.curve, baseline.source_fid),
                "samples": image_grid_markdown(
                    np.concatenate([s.numpy() for s in scored.samples.values()]), f"{name} samples"
                ),
            }
        )
        return ModelWeights(dict(scored.report.sampler.state_dict()), spec), metadata

    @dg.asset(
        name="gan_baselines",
        ins=every_class,
        deps=[class_set_key(dataset)],
        **asset_options(entry, GROUP, partitions=models, network=True, one_run=True),
    )
    def gan_baselines(
        context: dg.AssetExecutionContext,
        config: GanTrainingConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        feature_extractor: FeatureExtractorResource,
        search_executor: SearchExecutorResource,
        augmented_dataset: dict,
        image_splits: dict,
        feature_extractors: ModelWeights,
    ) -> dict[str, ModelWeights]:
        """A classic GAN (DCGAN to BEGAN, or the histology ResNet-SAGAN) trained on the same images and budget."""
        trained = {}
        for name in context.partition_keys:
            weights, metadata = train_gan_baseline(
                context, name, config, compute=compute, image_dataset=image_dataset,
                feature_extractor=feature_extractor, search_executor=search_executor,
                augmented=augmented_dataset, splits=image_splits, extractors=feature_extractors,
            )  # fmt: skip
            context.add_asset_metadata(metadata, partition_key=name)
            trained[name] = weights
        return trained

    return [trained_gan, gan_baselines]
