"""Finding trained models the instance knows of: the newest materialization of an asset per
dataset, and the weights file the IO manager recorded for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from bio_assets.assets.partitions import asset_key


@dataclass(frozen=True)
class StoredModel:
    model_id: str  # the dataset whose asset holds the model
    asset: str
    path: Path
    timestamp: float
    run_id: str


def stored_models(instance: dg.DagsterInstance, asset_names: tuple[str, ...], datasets: list[str]) -> list[StoredModel]:
    """The newest materialization of each ``asset_names`` entry per dataset, newest first,
    earlier names preferred within a dataset (e.g. ``extended_classifier`` before ``classifier``)."""
    found = []
    for dataset in datasets:
        for name in asset_names:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key(dataset, name)), limit=1
            ).records
            if not records or records[0].asset_materialization is None:
                continue
            path = records[0].asset_materialization.metadata.get("path")
            if path is None or not Path(path.value).is_file():
                continue
            found.append(StoredModel(dataset, name, Path(path.value), records[0].timestamp, records[0].run_id))
            break
    return sorted(found, key=lambda m: -m.timestamp)


def pick_model(models: list[StoredModel], model_id: str | None, what: str) -> StoredModel:
    """The model with ``model_id`` (a dataset name), or the newest; a clear error when there is none."""
    if not models:
        raise ValueError(f"no {what} has been materialized yet; run `bio-assets materialize` (or `make demo`) first")
    if model_id is None:
        return models[0]
    for model in models:
        if model.model_id == model_id:
            return model
    raise ValueError(f"unknown model {model_id!r}; available {what} models: {', '.join(m.model_id for m in models)}")
