"""IO manager that stores every materialization's value as its own pickle-free file.

Records (``bio_assets.core.io.records``) become ``.npz``; ``ModelWeights`` become safetensors
with their JSON spec in the header. The root is a local folder (default), a shared mount (NFS)
or an fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://`` in tests), through
``universal_pathlib``. Each value lives at ``<root>/<asset key path>/<partition>/<run id>.<ext>``,
so the lineage of any past run leads to the exact value it made; an input loads the file of the
newest materialization the instance recorded. ``keep_versions`` bounds how many are kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import dagster as dg
from pydantic import Field
from upath import UPath

import bio_assets.core.search.outcome  # noqa: F401  (registers SearchOutcome for loading)
from bio_assets.core.data.class_names import check_class_name
from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.storage import ModelWeights, record_bytes, record_from_bytes, weights_bytes, weights_from_bytes
from resources.paths import data_home

SUFFIXES = (".npz", ".safetensors")
UNPARTITIONED = "value"
STORAGE_URL_ENV = "BIO_ASSETS_STORAGE"


def _default_root() -> str:
    return os.environ.get(STORAGE_URL_ENV) or str(data_home() / "storage")


class AssetFileIOManager(dg.ConfigurableIOManager):
    """Persists each materialization's value as ``.npz`` / ``.safetensors``; never pickles."""

    root: str = Field(
        default_factory=_default_root,
        description=f"folder or fsspec URL of stored values; default ${STORAGE_URL_ENV}, else <data home>/storage",
    )
    keep_versions: int = Field(
        default=0, description="values kept per asset and partition, newest first; 0 keeps every version"
    )

    def _folder(self, key: dg.AssetKey, partition: str | None) -> UPath:
        # Partition keys are class (or model) names: checked by the class-name rule (no '.' or '..',
        # which would name the folder itself) and quoted, so any accepted name is one safe segment.
        leaf = quote(check_class_name(partition), safe="") if partition is not None else UNPARTITIONED
        return UPath(self.root).joinpath(*key.path, leaf)

    def _write(self, path: UPath, payload: bytes) -> None:
        if path.protocol in ("", "file", "local"):
            atomic_write(Path(path.path), lambda handle: handle.write(payload))  # fsync + rename
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)  # an object store replaces an object in one put

    def _save(self, key: dg.AssetKey, partition: str | None, run_id: str, obj: object) -> UPath:
        folder = self._folder(key, partition)
        if isinstance(obj, ModelWeights):
            path, payload = folder / f"{run_id}.safetensors", weights_bytes(obj.state_dict, obj.spec)
        else:
            path, payload = folder / f"{run_id}.npz", record_bytes(obj)
        self._write(path, payload)
        self._apply_retention(folder)
        return path

    def _apply_retention(self, folder: UPath) -> None:
        if self.keep_versions <= 0:
            return
        versions = sorted(
            (p for p in folder.iterdir() if p.suffix in SUFFIXES), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for old in versions[self.keep_versions :]:
            old.unlink()

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        if not context.has_asset_partitions:
            path = self._save(context.asset_key, None, context.run_id, obj)
            context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})
            return
        partitions = list(context.asset_partition_keys)
        # A run of several partitions (one run per backfill) returns {partition: value}.
        values = obj if isinstance(obj, dict) and set(obj) == set(partitions) else None
        if values is None:
            if len(partitions) != 1:
                raise TypeError(
                    f"{context.asset_key.to_user_string()} materialized partitions {partitions} in one run: "
                    "return a dict with one value per partition"
                )
            values = {partitions[0]: obj}
        paths = {p: self._save(context.asset_key, p, context.run_id, value) for p, value in values.items()}
        if len(paths) == 1:
            context.add_output_metadata({"path": dg.MetadataValue.path(str(next(iter(paths.values()))))})
        else:
            context.add_output_metadata({"paths": dg.MetadataValue.json({p: str(v) for p, v in paths.items()})})

    def load_version(self, key: dg.AssetKey, partition: str | None, run_id: str) -> object:
        """The value that run ``run_id`` stored for ``key`` (and partition)."""
        folder = self._folder(key, partition)
        for suffix in SUFFIXES:
            path = folder / f"{run_id}{suffix}"
            if path.exists():
                return self._read(path)
        where = f" partition {partition!r}" if partition is not None else ""
        raise FileNotFoundError(f"no value of {key.to_user_string()}{where} stored by run {run_id} under {folder}")

    def _read(self, path: UPath) -> object:
        data = path.read_bytes()
        if path.suffix == ".safetensors":
            state_dict, spec = weights_from_bytes(data, str(path))
            return ModelWeights(state_dict=state_dict, spec=spec)
        return record_from_bytes(data, str(path))

    def load_stored(self, instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> object:
        """The value of the newest materialization of ``key`` (and partition) the instance records."""
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition is not None else None),
            limit=1,
        ).records
        if not records:
            where = f" partition {partition!r}" if partition is not None else ""
            raise FileNotFoundError(f"{key.to_user_string()}{where} has no materialization; materialize it first")
        return self.load_version(key, partition, records[0].run_id)

    def load_input(self, context: dg.InputContext) -> object:
        key = context.asset_key
        if not context.has_asset_partitions:
            return self.load_stored(context.instance, key, None)
        partitions = list(context.asset_partition_keys)
        if context.has_partition_key and partitions == [context.partition_key]:
            # Same-partition dependency (class -> class): the value itself.
            return self.load_stored(context.instance, key, partitions[0])
        # A consumer of every class (unpartitioned, or partitioned otherwise): all classes by name.
        return {partition: self.load_stored(context.instance, key, partition) for partition in sorted(partitions)}
