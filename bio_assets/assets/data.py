"""The data group: the observed class folders, ingested images, leakage-free splits and the
augmented train split, per class."""

import hashlib
import time

import dagster as dg
from pydantic import Field

from bio_assets.assets.common import asset_options, config_values, data_ins, run_settings
from bio_assets.assets.metadata import file_issue_table, image_grid_markdown, progress_logger
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.core.data.augment import AugmentParams, augment_class
from bio_assets.core.data.imaging import RESAMPLING
from bio_assets.core.data.ingest import ingest_class
from bio_assets.core.data.splits import SplitParams, source_groups, split_images
from bio_assets.core.io.records import ImageSet, ImageSplits
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.seeding import derive_seed, torch_generator
from resources.image_dataset import ImageDatasetResource

GROUP = "data"
SPLIT_FIELDS = ("train_fraction", "val_fraction", "test_fraction")
# The data version an observation records, as Dagster's observable source assets write it.
DATA_VERSION_TAG = "dagster/data_version"


def class_set_key(dataset: str) -> dg.AssetKey:
    """``<dataset>/class_set``: which classes the dataset has. The assets that read every class depend
    on it, so that a class removed (its partition deleted, which Dagster records as no event) rebuilds
    them as a changed input does."""
    return asset_key(dataset, "class_set")


def class_set_version(class_names: set[str]) -> str:
    return hashlib.sha256("\n".join(sorted(class_names)).encode()).hexdigest()[:16]


def build_class_set_source(entry: DatasetEntry) -> dg.SourceAsset:
    """``<dataset>/class_set``: observed by dataset_sensor when a class folder is removed."""

    @dg.observable_source_asset(
        key=class_set_key(entry.name),
        group_name=GROUP,
        description="The dataset's classes; dataset_sensor records a new version when a class folder is removed.",
    )
    def class_set(image_dataset: ImageDatasetResource) -> dg.DataVersion:
        return dg.DataVersion(class_set_version(set(image_dataset.layout(entry.name).class_folders())))

    return class_set


def class_set_observation(dataset: str, class_names: set[str], removed: list[str]) -> dg.AssetObservation:
    """An observation of ``<dataset>/class_set`` after ``removed`` classes left it."""
    return dg.AssetObservation(
        asset_key=class_set_key(dataset),
        tags={DATA_VERSION_TAG: class_set_version(class_names)},
        metadata={"classes": sorted(class_names), "removed": sorted(removed)},
    )


def folder_observation(dataset: str, class_name: str, version: str) -> dg.AssetObservation:
    """An observation of ``<dataset>/image_folder`` for one class: its content fingerprint."""
    return dg.AssetObservation(
        asset_key=asset_key(dataset, "image_folder"),
        partition=class_name,
        tags={DATA_VERSION_TAG: version},
        metadata={"fingerprint": version},
    )


class SplitConfig(dg.Config):
    train_fraction: float | None = Field(
        default=None,
        description="share of each class's source images for training "
        f"({profile_help('image_splits', 'train_fraction')})",
    )
    val_fraction: float | None = Field(
        default=None,
        description="share for validation: search fitness and every choice of a setting "
        f"({profile_help('image_splits', 'val_fraction')})",
    )
    test_fraction: float | None = Field(
        default=None,
        description=f"share held out for the final test, read once ({profile_help('image_splits', 'test_fraction')})",
    )
    seed: int = 0


class AugmentConfig(dg.Config):
    target_per_class: int | None = Field(
        default=None,
        description="images per class after augmentation; unset: the dataset profile's value "
        f"({profile_help('augmented_dataset', 'target_per_class')})",
    )
    probability: float = Field(default=0.5, description="probability of each operation")
    max_rotation_deg: float = 30.0
    scale_min: float = 0.85
    scale_max: float = 1.15
    max_shear_deg: float = 10.0
    elastic_alpha: float = 20.0
    elastic_sigma: float = 4.0
    seed: int = 0

    def to_params(self, class_name: str, target_per_class: int) -> AugmentParams:
        return AugmentParams(
            target_per_class=int(target_per_class),
            probability=self.probability,
            max_rotation_deg=self.max_rotation_deg,
            scale_range=(self.scale_min, self.scale_max),
            max_shear_deg=self.max_shear_deg,
            elastic_alpha=self.elastic_alpha,
            elastic_sigma=self.elastic_sigma,
            seed=derive_seed(self.seed, "augment", class_name),
        )


def build_image_folder_source(entry: DatasetEntry) -> dg.SourceAsset:
    """``<dataset>/image_folder``: the class folders as an observable source, one data version per class."""

    @dg.observable_source_asset(
        key=asset_key(entry.name, "image_folder"),
        partitions_def=class_partitions(entry.name),
        group_name=GROUP,
        description="The dataset's class folders on disk, observed as one content fingerprint per class.",
    )
    def image_folder(image_dataset: ImageDatasetResource) -> dg.DataVersionsByPartition:
        return dg.DataVersionsByPartition(image_dataset.fingerprints(entry.name))

    return image_folder


def build_data_assets(entry: DatasetEntry) -> list:
    """``image_folder`` and ``class_set`` (observed), ``raw_images``, ``image_splits`` and ``augmented_dataset``."""
    dataset = entry.name
    partitions = class_partitions(dataset)

    @dg.asset(
        name="raw_images",
        deps=[asset_key(dataset, "image_folder")],
        **asset_options(entry, GROUP, partitions=partitions, kinds=("numpy",), code_version="3"),
    )
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
            pattern=layout.file_pattern,
            limits=image_dataset.limits(),
            on_progress=progress_logger(context, "decoded"),
            formats=image_dataset.formats(),
            twins=twins,
        )
        # The files read are the folder's current version: recorded so the dataset sensor, seeing
        # the same version, does not request this class again.
        context.log_event(folder_observation(dataset, class_name, result.fingerprint))
        return dg.MaterializeResult(
            value=result.images,
            data_version=dg.DataVersion(result.fingerprint),
            metadata={
                "dagster/row_count": len(result.images),
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
        ins=data_ins(dataset, "raw_images"),
        **asset_options(entry, GROUP, partitions=partitions, kinds=("numpy",)),
    )
    def image_splits(
        context: dg.AssetExecutionContext,
        config: SplitConfig,
        image_dataset: ImageDatasetResource,
        raw_images: ImageSet,
    ) -> dg.MaterializeResult:
        """Train, validation and test images of one class, split by source image before any augmentation."""
        current = image_dataset.entry(dataset)
        settings = run_settings(context, current, "image_splits", config_values(config, SPLIT_FIELDS))
        params = SplitParams(*(float(settings[f]) for f in SPLIT_FIELDS), config.seed)
        splits = split_images(raw_images, params, current.group_pattern)
        sources = source_groups(raw_images.file_names, raw_images.sha256, current.group_pattern)
        if len(splits.test) < 10:
            context.log.warning(f"{context.partition_key}: only {len(splits.test)} test images; accuracies are coarse")
        return dg.MaterializeResult(
            value=splits,
            metadata={
                "dagster/row_count": len(raw_images),
                "num_train": len(splits.train),
                "num_val": len(splits.val),
                "num_test": len(splits.test),
                "fractions": "/".join(str(settings[f]) for f in SPLIT_FIELDS),
                "seed": config.seed,
                "split_rule": "seeded SHA-256 ranking of file contents (stable when images are added)",
                "group_pattern": current.group_pattern or "none: every file is its own source",
                "num_sources": len(set(sources.tolist())),
                **settings.metadata(),
            },
        )

    @dg.asset(
        name="augmented_dataset",
        ins=data_ins(dataset, "image_splits"),
        **asset_options(entry, GROUP, partitions=partitions, kinds=("numpy",)),
    )
    def augmented_dataset(
        context: dg.AssetExecutionContext,
        config: AugmentConfig,
        image_dataset: ImageDatasetResource,
        image_splits: ImageSplits,
    ) -> dg.MaterializeResult:
        """The train split of one class enlarged to the target count by random affine and elastic distortions."""
        values = config_values(config, ("target_per_class",))
        settings = run_settings(context, image_dataset.entry(dataset), "augmented_dataset", values)
        params = config.to_params(context.partition_key, int(settings["target_per_class"]))
        started = time.perf_counter()
        train = image_splits.train
        augmented = augment_class(train, params, torch_generator(params.seed), progress_logger(context, "augmented"))
        new_images = augmented.images[len(train) :] if len(augmented) > len(train) else augmented.images
        return dg.MaterializeResult(
            value=augmented,
            metadata={
                "dagster/row_count": len(augmented),
                "num_images": len(augmented),
                "num_originals": len(train),
                "num_augmented": len(augmented) - len(train),
                "target_per_class": params.target_per_class,
                "seed": config.seed,
                "class_seed": str(params.seed),
                "seconds": round(time.perf_counter() - started, 3),
                "samples": image_grid_markdown(new_images, f"{context.partition_key}: augmented images"),
                **settings.metadata(),
            },
        )

    sources = [build_image_folder_source(entry), build_class_set_source(entry)]
    return [*sources, raw_images, image_splits, augmented_dataset]
