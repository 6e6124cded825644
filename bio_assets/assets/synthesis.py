"""The synthesis group, part 1: synthetic images per class from the trained generator,
published as PNG + MD5 files with catalog rows."""

import time
from importlib.metadata import version

import dagster as dg
import numpy as np
from pydantic import Field

from bio_assets.assets.metadata import image_grid_markdown, latest_metadata
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.core.io.records import ImageSet
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.extractors import EXTRACTOR_NAMES
from bio_assets.core.profiles import resolve_profile
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
    max_class_fid: float = Field(
        default=150.0, description="quality gate: the class's FID against its real train images must stay below this"
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


def build_synthesis_asset(dataset: str) -> dg.AssetsDefinition:
    gan_key = asset_key(dataset, "trained_gan")

    @dg.asset(
        name="synthetic_dataset",
        key_prefix=[dataset],
        group_name=GROUP,
        partitions_def=class_partitions(dataset),
        pool="gpu",
        code_version=CODE_VERSION,
        ins={"trained_gan": dg.AssetIn(key=gan_key)},
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
        count = int(
            resolve_profile(
                {"images_per_class": config.images_per_class}, image_dataset.entry(dataset).profile, "synthetic_dataset"
            )["images_per_class"]
        )
        if config.gate_extractor not in EXTRACTOR_NAMES:
            raise ValueError(f"gate_extractor {config.gate_extractor!r} is not one of {EXTRACTOR_NAMES}")
        device = compute.torch_device()
        generator = load_trained_generator(trained_gan.state_dict, trained_gan.spec, device)
        images = synthesize(generator, class_name, count, config.seed, device)  # (count, 64, 64, 3)
        upstream = latest_metadata(context.instance, gan_key, None)
        checkpoint = (
            f"{upstream.get('path', '?')} (run {context.instance.get_latest_materialization_event(gan_key).run_id})"
        )
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
            "max_class_fid": config.max_class_fid,
            "min_distance_ratio": config.min_distance_ratio,
            "gate_extractor": config.gate_extractor,
            "samples": image_grid_markdown(images, f"synthetic {class_name}"),
            "wall_seconds": round(time.perf_counter() - started, 1),
            **catalog.describe(),
            **{f"compute_{k}": v for k, v in compute.describe().items()},
        }
        return dg.MaterializeResult(value=value, metadata=metadata)

    return synthetic_dataset
