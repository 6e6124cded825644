"""The synthesis group, part 1: synthetic images per class from the trained generator,
published as PNG + MD5 files with catalog rows."""

import time
from importlib.metadata import version

import dagster as dg
import numpy as np
import torch
from pydantic import Field

from bio_assets.assets.common import asset_options, config_values, data_ins, run_settings
from bio_assets.assets.metadata import image_grid_markdown, latest_metadata
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.checks.gates import gate_check_specs
from bio_assets.core.io.records import ImageSet, ImageSplits
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.extractors import EXTRACTOR_NAMES
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.synthesis.catalog import GanRecord
from bio_assets.core.synthesis.files import verify_folder
from bio_assets.core.synthesis.gates import GateInputs, GateThresholds, evaluate_gates
from bio_assets.core.synthesis.generation import (
    PUBLISHED_SIZE,
    class_seed,
    load_trained_generator,
    resize_mode,
    synthesize,
)
from resources.catalog import CatalogResource
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager

GROUP = "synthesis"
CODE_VERSION = "1"


class SyntheticConfig(dg.Config):
    images_per_class: int | None = Field(
        default=None,
        description=f"images generated per class ({profile_help('synthetic_dataset', 'images_per_class')})",
    )
    seed: int = Field(
        default=0, description="base seed; each class draws its noise from a seed derived from it and the class name"
    )
    max_class_fid: float | None = Field(
        default=None,
        description="quality gate: the class's FID against its real train images must stay below this "
        f"({profile_help('synthetic_dataset', 'max_class_fid')})",
    )
    min_distance_ratio: float = Field(
        default=0.05,
        description=(
            "quality gate: every synthetic image must be at least this fraction of the real images' typical "
            "nearest-neighbour spacing (features) from any real train or validation image (the test split is "
            "read once, by the final evaluations)"
        ),
    )
    gate_extractor: str = Field(default="biocnn1", description=f"features the gates use: one of {EXTRACTOR_NAMES}")


def gan_record(dataset: str, trained_gan: ModelWeights, gan_run: str, checkpoint_sha256: str) -> GanRecord:
    """The catalog's row for the trained generator.

    Fails loudly on a ``trained_gan`` stored before it recorded its training."""
    spec = trained_gan.spec
    if "training" not in spec:
        raise ValueError(
            f"{dataset}/trained_gan was stored without its training parameters; re-materialize trained_gan"
        )
    generator = {
        k: spec[k]
        for k in ("kind", "role", "genotype", "width", "image_size", "num_classes", "noise_dim", "class_names")
    }
    return GanRecord(
        dataset=dataset,
        generator=generator,
        discriminator=spec["discriminator"],
        generator_checkpoint=f"{dataset}/trained_gan, run {gan_run}",
        checkpoint_sha256=checkpoint_sha256,
        code_version=f"bio-assets {version('bio-assets')} synthetic_dataset v{CODE_VERSION}",
        training=dict(spec["training"]),
    )


def require_current_generator(instance: dg.DagsterInstance, dataset: str, class_names: list[str]) -> str:
    """The run id of the newest ``trained_gan``; ``ValueError`` naming every class whose newest
    synthetic images were made by another generator (they must be rebuilt first)."""
    event = instance.get_latest_materialization_event(asset_key(dataset, "trained_gan"))
    if event is None:
        raise ValueError(f"{dataset}/trained_gan is not materialized; materialize it and synthetic_dataset first")
    stale = {}
    for name in class_names:
        made_by = latest_metadata(instance, asset_key(dataset, "synthetic_dataset"), name).get("trained_gan_run")
        if made_by != event.run_id:
            stale[name] = made_by or "no recorded generator"
    if stale:
        listed = ", ".join(f"{name} (made by run {str(run)[:8]})" for name, run in sorted(stale.items()))
        raise ValueError(
            f"synthetic images of {listed} come from another generator than the newest {dataset}/trained_gan "
            f"(run {event.run_id[:8]}); re-materialize {dataset}/synthetic_dataset for those classes first"
        )
    return event.run_id


def gate_inputs(context, served, extractors, *, splits, name, images) -> GateInputs:
    """The staged images and the real ones the gates compare them with (every class's validation
    split). ``served``: the feature-extractor, compute and IO-manager resources."""
    feature_extractor, compute, io_manager = served
    classes = context.instance.get_dynamic_partitions(class_partitions(context.assets_def.key.path[0]).name)
    key = asset_key(context.assets_def.key.path[0], "image_splits")
    validation = [io_manager.load_stored(context.instance, key, c).val.images for c in sorted(classes)]
    extractor = feature_extractor.serve(name, extractors, compute.torch_device())
    return GateInputs(
        fake=images,
        train=splits.train.images,
        held_out=np.concatenate([v for v in validation if len(v)]) if any(len(v) for v in validation) else images[:0],
        features=lambda batch: extractor.features(torch.from_numpy(np.ascontiguousarray(batch))),
        extractor=name,
    )


def build_synthesis_asset(entry: DatasetEntry, catalog_kind: str = "sqlite") -> dg.AssetsDefinition:
    dataset = entry.name
    gan_key = asset_key(dataset, "trained_gan")
    options = asset_options(
        entry,
        GROUP,
        partitions=class_partitions(dataset),
        network=True,
        kinds=(catalog_kind,),
        code_version=CODE_VERSION,
    )

    # The class's own image_splits partition is an input: the gates compare with its real images,
    # and the edge lets a backfill of the class partitions reach this asset, which otherwise sits
    # behind the unpartitioned trained_gan ("Materialize all" in the UI).
    @dg.asset(
        name="synthetic_dataset",
        ins=data_ins(dataset, "trained_gan", "image_splits", "feature_extractors"),
        check_specs=gate_check_specs(dataset),
        **options,
    )
    def synthetic_dataset(
        context: dg.AssetExecutionContext,
        config: SyntheticConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        catalog: CatalogResource,
        feature_extractor: FeatureExtractorResource,
        io_manager: dg.ResourceParam[AssetFileIOManager],
        trained_gan: ModelWeights,
        image_splits: ImageSplits,
        feature_extractors: ModelWeights,
    ):  # no annotation: with check specs, Dagster would read one as the type of every output
        """Synthetic 64x64 images of one class, published with MD5s and catalog rows once its quality gates pass."""
        started, class_name = time.perf_counter(), context.partition_key
        values = config_values(config, ("images_per_class", "max_class_fid"))
        settings = run_settings(context, image_dataset.entry(dataset), "synthetic_dataset", values)
        thresholds = GateThresholds(
            float(settings["max_class_fid"]), config.min_distance_ratio, int(settings["images_per_class"])
        )
        generator = load_trained_generator(trained_gan.state_dict, trained_gan.spec, compute.torch_device())
        images = synthesize(
            generator, class_name, thresholds.num_requested, seed=config.seed, device=compute.torch_device()
        )
        served = (feature_extractor, compute, io_manager)
        inputs = gate_inputs(
            context, served, feature_extractors, splits=image_splits, name=config.gate_extractor, images=images
        )
        gan_run = context.instance.get_latest_materialization_event(gan_key).run_id
        record = gan_record(dataset, trained_gan, gan_run, generator.checkpoint_sha256)
        store, results = catalog.store(), []

        def approve(folder, files) -> bool:
            staged = verify_folder(folder, {f.file_name: f.md5 for f in files}, PUBLISHED_SIZE)
            results.extend(evaluate_gates(inputs, thresholds, staged=staged, num_staged=len(files)))
            return all(r.passed for r in results)

        previous = store.sync(dataset, class_name)
        publication, published = store.publish_if(
            record, class_name, images, config.seed, approve=approve,
            on_stage=lambda stage: context.log.info(f"publication of {class_name}: {stage}"),
        )  # fmt: skip
        return dg.MaterializeResult(
            value=ImageSet(images, *publication_names(publication), class_name),
            metadata=synthesis_metadata(
                publication, published, previous, generator=generator, thresholds=thresholds, config=config,
                gan_run=gan_run, folder=store.class_folder(dataset, class_name), started=started, images=images,
            ) | settings.metadata() | catalog.describe() | {f"compute_{k}": v for k, v in compute.describe().items()},
            check_results=[check_result(r) for r in results],
        )  # fmt: skip

    return synthetic_dataset


def publication_names(publication) -> tuple[np.ndarray, np.ndarray]:
    """(file names, SHA-256) of a publication's files, in order."""
    return np.array([f.file_name for f in publication.files]), np.array([f.sha256 for f in publication.files])


def check_result(result) -> dg.AssetCheckResult:
    """A gate's result as the asset check of the same name; lists and mappings as JSON metadata."""
    metadata = {k: dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v for k, v in result.metadata.items()}
    return dg.AssetCheckResult(check_name=result.name, passed=result.passed, metadata=metadata)


def synthesis_metadata(publication, published: bool, previous: dict | None, **facts) -> dict:
    """What a materialization of one class records: what was generated, and what is published now."""
    generator, thresholds, config = facts["generator"], facts["thresholds"], facts["config"]
    images_meta = {
        "dagster/row_count": len(publication.files) if published else 0,
        "num_images": len(publication.files),
        "num_requested": thresholds.num_requested,
        "published": published,
        "publication": publication.publication if published else (previous or {}).get("publication", "none"),
        "publication_note": "the staged images passed every gate and are the class's publication"
        if published
        else "a gate failed: the staged images were discarded; the previous publication, if any, stays current",
    }
    return {
        **images_meta,
        "image_size": PUBLISHED_SIZE,
        "resize_mode": resize_mode(generator),
        "output_folder": dg.MetadataValue.path(str(facts["folder"])),
        "seed": config.seed,
        "class_seed": class_seed(config.seed, publication.class_name),
        "generator_genotype": generator.spec.genotype,
        "checkpoint_sha256": generator.checkpoint_sha256,
        "trained_gan_run": facts["gan_run"],
        "max_class_fid": thresholds.max_class_fid,
        "min_distance_ratio": thresholds.min_distance_ratio,
        "gate_extractor": config.gate_extractor,
        "gate_held_out_split": "validation",
        "samples": image_grid_markdown(facts["images"], f"synthetic {publication.class_name}"),
        "wall_seconds": round(time.perf_counter() - facts["started"], 1),
    }
