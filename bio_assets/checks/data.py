"""Asset checks that guard the data: disjoint splits, non-empty splits, balance, no leakage,
no picture filed under two classes."""

import dagster as dg

from bio_assets.assets.metadata import latest_metadata
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.core.io.records import SPLIT_NAMES, ImageSet, ImageSplits
from resources.image_dataset import ImageDatasetResource


def overlapping_hashes(splits: ImageSplits) -> dict[str, int]:
    """Number of shared file hashes for each pair of splits."""
    sets = {name: set(getattr(splits, name).sha256.tolist()) for name in SPLIT_NAMES}
    return {f"{a}&{b}": len(sets[a] & sets[b]) for i, a in enumerate(SPLIT_NAMES) for b in SPLIT_NAMES[i + 1 :]}


def image_defects(images: ImageSet, size: int) -> dict[str, int]:
    """Counts of invalid rows: wrong shape, blank (one colour), repeated content hash."""
    shape_ok = images.images.shape[1:] == (size, size, 3)
    flat = images.images.reshape(len(images), -1)
    blank = int((flat.min(axis=1) == flat.max(axis=1)).sum())
    return {
        "wrong_shape": 0 if shape_ok else len(images),
        "blank": blank,
        "duplicate_hashes": len(images) - len(set(images.sha256.tolist())),
    }


def recorded_value(context: dg.AssetCheckExecutionContext, key: dg.AssetKey, name: str) -> int:
    """A number the checked asset recorded in its metadata for this partition; fails loudly if absent."""
    partition = context.op_execution_context.partition_key
    value = latest_metadata(context.instance, key, partition).get(name)
    if value is None:
        raise ValueError(f"{key.to_user_string()} [{partition}] has no recorded {name}")
    return int(value)


def runs_with(key: dg.AssetKey) -> dg.AutomationCondition:
    """A check's automation: evaluated in the same run whenever automation rebuilds its asset, so
    the asset's children wait on the fresh result (a failed blocking check stops them)."""
    requested = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
    return requested.allow(dg.AssetSelection.assets(key)).with_label("evaluated with its asset")


def build_data_checks(dataset: str) -> list[dg.AssetChecksDefinition]:
    partitions = class_partitions(dataset)
    raw_key = asset_key(dataset, "raw_images")
    splits_key = asset_key(dataset, "image_splits")
    augmented_key = asset_key(dataset, "augmented_dataset")

    @dg.asset_check(
        asset=raw_key,
        automation_condition=runs_with(raw_key),
        partitions_def=partitions,
        blocking=True,
        description="Images have the configured size, none is blank, none repeats.",
    )
    def raw_images_valid(context: dg.AssetCheckExecutionContext, raw_images: ImageSet) -> dg.AssetCheckResult:
        size = recorded_value(context, raw_key, "image_size")
        defects = image_defects(raw_images, size)
        return dg.AssetCheckResult(passed=not any(defects.values()), metadata={**defects, "image_size": size})

    @dg.asset_check(
        asset=raw_key,
        partitions_def=partitions,
        blocking=True,
        description="No kept image has the same pixels as an image filed under another class.",
    )
    def no_cross_class_twins(
        context: dg.AssetCheckExecutionContext, image_dataset: ImageDatasetResource, raw_images: ImageSet
    ) -> dg.AssetCheckResult:
        class_name = context.op_execution_context.partition_key
        twins = image_dataset.cross_class_twins(dataset)
        kept = sorted(set(raw_images.file_names.tolist()) & set(twins.of_class(class_name)))
        left_out = [row for row in twins.rows() if row["class"] == class_name]
        table = "\n".join(
            ["| file | filed under classes |", "|---|---|"] + [f"| {r['file']} | {r['classes']} |" for r in left_out]
        )
        return dg.AssetCheckResult(
            passed=not kept,
            metadata={
                "num_twins_kept": len(kept),
                "num_twins_left_out": len(left_out) - len(kept),
                "twins": dg.MetadataValue.md(table),
            },
        )

    @dg.asset_check(
        asset=splits_key,
        automation_condition=runs_with(splits_key),
        partitions_def=partitions,
        blocking=True,
        description="No source image (by SHA-256) is in two splits.",
    )
    def splits_disjoint(image_splits: ImageSplits) -> dg.AssetCheckResult:
        overlaps = overlapping_hashes(image_splits)
        return dg.AssetCheckResult(
            passed=not any(overlaps.values()), metadata={f"shared_{k}": v for k, v in overlaps.items()}
        )

    @dg.asset_check(
        asset=splits_key,
        automation_condition=runs_with(splits_key),
        partitions_def=partitions,
        blocking=True,
        description="With 3 or more images, train, val and test all hold images.",
    )
    def splits_non_empty(image_splits: ImageSplits) -> dg.AssetCheckResult:
        sizes = {name: len(getattr(image_splits, name)) for name in SPLIT_NAMES}
        applies = sum(sizes.values()) >= 3
        return dg.AssetCheckResult(
            passed=not applies or min(sizes.values()) > 0, metadata={**sizes, "applies": applies}
        )

    @dg.asset_check(
        asset=augmented_key,
        automation_condition=runs_with(augmented_key),
        partitions_def=partitions,
        blocking=True,
        description="The class reached target_per_class images.",
    )
    def augmented_reaches_target(
        context: dg.AssetCheckExecutionContext, augmented_dataset: ImageSet
    ) -> dg.AssetCheckResult:
        target = recorded_value(context, augmented_key, "target_per_class")
        return dg.AssetCheckResult(
            passed=len(augmented_dataset) >= target,
            metadata={"num_images": len(augmented_dataset), "target_per_class": target},
        )

    @dg.asset_check(
        asset=augmented_key,
        automation_condition=runs_with(augmented_key),
        partitions_def=partitions,
        blocking=True,
        additional_ins={"image_splits": dg.AssetIn(key=splits_key)},
        description="Every augmented image comes from the train split: none from validation or test.",
    )
    def augmented_from_train_only(augmented_dataset: ImageSet, image_splits: ImageSplits) -> dg.AssetCheckResult:
        held_out = set(image_splits.val.sha256.tolist()) | set(image_splits.test.sha256.tolist())
        leaked = sorted(set(augmented_dataset.sha256.tolist()) & held_out)
        return dg.AssetCheckResult(passed=not leaked, metadata={"num_leaked_sources": len(leaked)})

    return [
        raw_images_valid,
        no_cross_class_twins,
        splits_disjoint,
        splits_non_empty,
        augmented_reaches_target,
        augmented_from_train_only,
    ]
