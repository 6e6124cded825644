"""The synthesis group, part 1: synthetic images per class from the trained generator,
published as PNG + MD5 files with catalog rows."""

import time
from importlib.metadata import version

import dagster as dg
import numpy as np
from pydantic import Field

from bio_assets.assets.common import asset_options, config_values, data_ins, run_settings
from bio_assets.assets.metadata import image_grid_markdown, latest_metadata
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.core.io.records import ImageSet
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.extractors import EXTRACTOR_NAMES
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.synthesis.catalog import GanRecord
from bio_assets.core.synthesis.generation import (
    PUBLISHED_SIZE,
    class_seed,
    load_trained_generator,
    resize_mode,
    synthesize,
)
from resources.catalog import CatalogResource
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource

GROUP = "synthesis"
CODE_VERSION = "1"


class SyntheticConfig(dg.Config):
    images_per_class: int | None = Field(default=None, description="images generated per class (paper 4000, demo 64)")
    seed: int = Field(
        default=0, description="base seed; each class draws its noise from a seed derived from it and the class name"
    )
    max_class_fid: float | None = Field(
        default=None, description="quality gate: the class's FID against its real train images must stay below this"
    )
    min_distance_ratio: float = Field(
        default=0.05,
        description=(
            "quality gate: every synthetic image must be at least this fraction of the real images' typical "
            "nearest-neighbour spacing (features) from any real train, validation or test image"
        ),
    )
    gate_extractor: str = Field(default="biocnn1", description=f"features the gates use: one of {EXTRACTOR_NAMES}")


def gan_record(dataset: str, trained_gan: ModelWeights, checkpoint: str, checkpoint_sha256: str) -> GanRecord:
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
        generator_checkpoint=checkpoint,
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

    # The class's own image_splits partition is a parent too: the quality gates compare with its
    # real images, and the edge lets a backfill of the class partitions reach this asset, which
    # otherwise sits behind the unpartitioned trained_gan ("Materialize all" in the UI).
    @dg.asset(
        name="synthetic_dataset",
        ins=data_ins(dataset, "trained_gan"),
        deps=[asset_key(dataset, "image_splits")],
        **options,
    )
    def synthetic_dataset(
        context: dg.AssetExecutionContext,
        config: SyntheticConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        catalog: CatalogResource,
        trained_gan: ModelWeights,
    ) -> dg.MaterializeResult:
        """Synthetic 64x64 images of one class from the trained generator, as PNGs with MD5s and catalog rows."""
        started = time.perf_counter()
        class_name = context.partition_key
        values = config_values(config, ("images_per_class", "max_class_fid"))
        settings = run_settings(context, image_dataset.entry(dataset), "synthetic_dataset", values)
        count = int(settings["images_per_class"])
        if config.gate_extractor not in EXTRACTOR_NAMES:
            raise ValueError(f"gate_extractor {config.gate_extractor!r} is not one of {EXTRACTOR_NAMES}")
        device = compute.torch_device()
        generator = load_trained_generator(trained_gan.state_dict, trained_gan.spec, device)
        images = synthesize(generator, class_name, count, config.seed, device)  # (count, 64, 64, 3)
        upstream = latest_metadata(context.instance, gan_key, None)
        gan_run = context.instance.get_latest_materialization_event(gan_key).run_id
        checkpoint = f"{upstream.get('path', '?')} (run {gan_run})"
        store = catalog.store()
        publication = store.publish(
            gan_record(dataset, trained_gan, checkpoint, generator.checkpoint_sha256),
            class_name,
            images,
            config.seed,
            on_stage=lambda stage: context.log.info(f"publication of {class_name}: {stage}"),
        )
        files = publication.files
        value = ImageSet(
            images, np.array([f.file_name for f in files]), np.array([f.sha256 for f in files]), class_name
        )
        metadata = {
            "dagster/row_count": len(files),
            "num_images": len(files),
            "num_requested": count,
            "image_size": PUBLISHED_SIZE,
            "resize_mode": resize_mode(generator),
            "output_folder": dg.MetadataValue.path(str(store.class_folder(dataset, class_name))),
            "publication": publication.publication,
            "seed": config.seed,
            "class_seed": class_seed(config.seed, class_name),
            "generator_genotype": generator.spec.genotype,
            "generator_checkpoint": checkpoint,
            "checkpoint_sha256": generator.checkpoint_sha256,
            "trained_gan_run": gan_run,
            "max_class_fid": float(settings["max_class_fid"]),
            "min_distance_ratio": config.min_distance_ratio,
            "gate_extractor": config.gate_extractor,
            "samples": image_grid_markdown(images, f"synthetic {class_name}"),
            "wall_seconds": round(time.perf_counter() - started, 1),
            **catalog.describe(),
            **{f"compute_{k}": v for k, v in compute.describe().items()},
            **settings.metadata(),
        }
        return dg.MaterializeResult(value=value, metadata=metadata)

    return synthetic_dataset
