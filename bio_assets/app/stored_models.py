"""Finding trained models the instance knows of: the newest materialization of an asset per
dataset, or the one a given run made, and the weights file the IO manager recorded for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from bio_assets.assets.partitions import asset_key

# A run id may be given by its first characters, as the UI shows it (8).
MIN_RUN_PREFIX = 8


@dataclass(frozen=True)
class StoredModel:
    model_id: str  # the dataset whose asset holds the model
    asset: str
    path: Path
    timestamp: float
    run_id: str


def _model(record, dataset: str, name: str) -> StoredModel | None:
    materialization = record.asset_materialization
    path = materialization.metadata.get("path") if materialization else None
    if path is None or not Path(path.value).is_file():
        return None
    return StoredModel(dataset, name, Path(path.value), record.timestamp, record.run_id)


def stored_models(instance: dg.DagsterInstance, asset_names: tuple[str, ...], datasets: list[str]) -> list[StoredModel]:
    """The newest materialization of each ``asset_names`` entry per dataset, newest first,
    earlier names preferred within a dataset (e.g. ``extended_classifier`` before ``classifier``)."""
    found = []
    for dataset in datasets:
        for name in asset_names:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key(dataset, name)), limit=1
            ).records
            model = _model(records[0], dataset, name) if records else None
            if model is not None:
                found.append(model)
                break
    return sorted(found, key=lambda m: -m.timestamp)


def model_of_run(
    instance: dg.DagsterInstance, asset_names: tuple[str, ...], datasets: list[str], run_id: str
) -> StoredModel | None:
    """The model that run ``run_id`` (or a unique prefix of it) materialized, kept under its run id
    by the IO manager even after newer runs: every version stays recoverable."""
    matches = []
    for dataset in datasets:
        for name in asset_names:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key(dataset, name)), limit=10_000
            ).records
            matches += [(r, dataset, name) for r in records if r.run_id.startswith(run_id)]
    runs = {r.run_id for r, _, _ in matches}
    if len(runs) > 1:
        raise ValueError(f"run id {run_id!r} is ambiguous: {sorted(runs)}; give more characters")
    for record, dataset, name in matches:
        model = _model(record, dataset, name)
        if model is not None:
            return model
    return None


def pick_model(
    instance: dg.DagsterInstance, asset_names: tuple[str, ...], datasets: list[str], model_id: str | None, what: str
) -> StoredModel:
    """The newest model, the newest of dataset ``model_id``, or the one run ``model_id`` made."""
    models = stored_models(instance, asset_names, datasets)
    if model_id is None:
        if not models:
            raise ValueError(
                f"no {what} has been materialized yet; run `bio-assets materialize` (or `make demo`) first"
            )
        return models[0]
    for model in models:
        if model.model_id == model_id:
            return model
    if len(model_id) >= MIN_RUN_PREFIX:
        model = model_of_run(instance, asset_names, datasets, model_id)
        if model is not None:
            return model
    available = ", ".join(m.model_id for m in models) or "none"
    raise ValueError(
        f"unknown model {model_id!r}: neither a dataset with a {what} ({available}) nor a run that made one"
    )
