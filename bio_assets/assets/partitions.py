"""Class partitions: one dynamic partitions definition per registered dataset."""

from __future__ import annotations

import dagster as dg


def class_partitions_name(dataset: str) -> str:
    return f"{dataset}__classes"


def class_partitions(dataset: str) -> dg.DynamicPartitionsDefinition:
    """Partitions named after the dataset's class folders, kept in sync by ``dataset_sensor``."""
    return dg.DynamicPartitionsDefinition(name=class_partitions_name(dataset))


def asset_key(dataset: str, name: str) -> dg.AssetKey:
    """Every asset of a dataset lives under the dataset's name: ``demo/raw_images``."""
    return dg.AssetKey([dataset, name])


def class_partition_changes(dataset: str, existing: set[str], class_names: set[str]) -> tuple[list[str], list[str]]:
    """(partitions to add, partitions to delete) so that the class partitions equal ``class_names``.

    A folder that suddenly holds no class at all is an unmounted or emptied disk far more often than a
    dataset whose every class was removed on purpose: deleting every partition would orphan the whole
    history, so it is refused with the reason."""
    if existing and not class_names:
        raise ValueError(
            f"the folder of dataset {dataset!r} holds no class folder now, but {len(existing)} class partitions "
            "exist: it looks unmounted or emptied, so no partition is deleted. Mount it again, or remove the "
            f"dataset with `bio-assets datasets remove {dataset}`"
        )
    return sorted(class_names - existing), sorted(existing - class_names)
