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
