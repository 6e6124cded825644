"""The data group: ingested images, leakage-free splits and the augmented train split, per class."""

import time

import dagster as dg
from pydantic import Field

from bio_assets.assets.metadata import file_issue_table, image_grid_markdown, progress_logger
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.core.data.augment import AugmentParams, augment_class
from bio_assets.core.data.imaging import RESAMPLING
from bio_assets.core.data.ingest import ingest_class
from bio_assets.core.data.splits import SplitParams, source_groups, split_images
from bio_assets.core.io.records import ImageSet, ImageSplits
from bio_assets.core.profiles import profile_setting
from bio_assets.core.seeding import derive_seed, torch_generator
from resources.image_dataset import ImageDatasetResource

GROUP = "data"


class SplitConfig(dg.Config):
    train_fraction: float = Field(default=0.70, description="share of each class's source images for training")
    val_fraction: float = Field(default=0.15, description="share for validation (architecture search fitness)")
    test_fraction: float = Field(default=0.15, description="share held out for the final test")
    seed: int = 0

    def to_params(self) -> SplitParams:
        return SplitParams(self.train_fraction, self.val_fraction, self.test_fraction, self.seed)


class AugmentConfig(dg.Config):
    target_per_class: int | None = Field(
        default=None,
        description="images per class after augmentation; unset: the dataset profile's value (paper 200, demo 120)",
    )
    probability: float = Field(default=0.5, description="probability of each operation")
    max_rotation_deg: float = 30.0
    scale_min: float = 0.85
    scale_max: float = 1.15
    max_shear_deg: float = 10.0
    elastic_alpha: float = 20.0
    elastic_sigma: float = 4.0
    seed: int = 0

    def to_params(self, class_name: str, profile: str) -> AugmentParams:
        target = (
            self.target_per_class
            if self.target_per_class is not None
            else profile_setting(profile, "augmented_dataset", "target_per_class")
        )
        return AugmentParams(
            target_per_class=int(target),
            probability=self.probability,
            max_rotation_deg=self.max_rotation_deg,
            scale_range=(self.scale_min, self.scale_max),
            max_shear_deg=self.max_shear_deg,
            elastic_alpha=self.elastic_alpha,
            elastic_sigma=self.elastic_sigma,
            seed=derive_seed(self.seed, "augment", class_name),
        )


def build_data_assets(dataset: str) -> list[dg.AssetsDefinition]:
    """``raw_images``, ``image_splits`` and ``augmented_dataset`` under the prefix ``dataset``."""
    partitions = class_partitions(dataset)
    common = dict(key_prefix=[dataset], partitions_def=partitions, group_name=GROUP)

    @dg.asset(name="raw_images", code_version="2", **common)
    def raw_images(context: dg.AssetExecutionContext, image_dataset: ImageDatasetResource) -> dg.MaterializeResult:
        """Decoded, validated, resized RGB images of one class, with file names, hashes and rejected files."""
        class_name = context.partition_key
        layout = image_dataset.layout(dataset)
        folders = layout.class_folders()
        if class_name not in folders:
            raise ValueError(
                f"class {class_name!r} has no folder under {layout.root}; classes there: {sorted(folders)}"
            )
        started = time.perf_counter()
        twins = image_dataset.cross_class_twins(dataset)
        result = ingest_class(
            folders[class_name],
            class_name,
            image_dataset.image_size,
            layout.root,
            layout.file_pattern,
            image_dataset.limits(),
            progress_logger(context, "decoded"),
            formats=image_dataset.formats(),
            twins=twins,
        )
        return dg.MaterializeResult(
            value=result.images,
            data_version=dg.DataVersion(result.fingerprint),
            metadata={
                "num_images": len(result.images),
                "num_rejected": len(result.rejected),
                "num_skipped": len(result.skipped),
                "num_cross_class_twins": len(twins.of_class(class_name)),
                "left_out_files": file_issue_table(result.issues),
                "class_folder": dg.MetadataValue.path(str(folders[class_name])),
                "file_pattern": layout.file_pattern,
                "image_size": image_dataset.image_size,
                "resampling": f"Pillow {RESAMPLING.name}, aspect ratio not kept",
                "source_fingerprint": result.fingerprint,
                "seconds": round(time.perf_counter() - started, 3),
                "samples": image_grid_markdown(result.images.images, f"{class_name}: first images"),
            },
        )

    @dg.asset(
        name="image_splits",
        code_version="1",
        ins={"raw_images": dg.AssetIn(key=asset_key(dataset, "raw_images"))},
        automation_condition=dg.AutomationCondition.eager(),
        **common,
    )
    def image_splits(
        config: SplitConfig, image_dataset: ImageDatasetResource, raw_images: ImageSet
    ) -> dg.MaterializeResult:
        """Train, validation and test images of one class, split by source image before any augmentation."""
        group_pattern = image_dataset.entry(dataset).group_pattern
        splits = split_images(raw_images, config.to_params(), group_pattern)
        return dg.MaterializeResult(
            value=splits,
            metadata={
                "num_train": len(splits.train),
                "num_val": len(splits.val),
                "num_test": len(splits.test),
                "fractions": f"{config.train_fraction}/{config.val_fraction}/{config.test_fraction}",
                "seed": config.seed,
                "split_rule": "seeded SHA-256 ranking of file contents (stable when images are added)",
                "group_pattern": group_pattern or "none: every file is its own source",
                "num_sources": len(
                    set(source_groups(raw_images.file_names, raw_images.sha256, group_pattern).tolist())
                ),
            },
        )

    @dg.asset(
        name="augmented_dataset",
        code_version="1",
        ins={"image_splits": dg.AssetIn(key=asset_key(dataset, "image_splits"))},
        automation_condition=dg.AutomationCondition.eager(),
        **common,
    )
    def augmented_dataset(
        context: dg.AssetExecutionContext,
        config: AugmentConfig,
        image_dataset: ImageDatasetResource,
        image_splits: ImageSplits,
    ) -> dg.MaterializeResult:
        """The train split of one class enlarged to the target count by random affine and elastic distortions."""
        profile = image_dataset.entry(dataset).profile
        params = config.to_params(context.partition_key, profile)
        started = time.perf_counter()
        augmented = augment_class(
            image_splits.train, params, torch_generator(params.seed), progress_logger(context, "augmented")
        )
        return dg.MaterializeResult(
            value=augmented,
            metadata={
                "num_images": len(augmented),
                "num_originals": len(image_splits.train),
                "num_augmented": len(augmented) - len(image_splits.train),
                "target_per_class": params.target_per_class,
                "profile": profile,
                "seed": config.seed,
                "class_seed": str(params.seed),
                "seconds": round(time.perf_counter() - started, 3),
                "samples": image_grid_markdown(
                    augmented.images[len(image_splits.train) :]
                    if len(augmented) > len(image_splits.train)
                    else augmented.images,
                    f"{context.partition_key}: augmented images",
                ),
            },
        )

    return [raw_images, image_splits, augmented_dataset]
