"""IO manager that stores asset values as pickle-free files under a root folder.

Records (``bio_assets.core.io.records``) become ``.npz``; ``ModelWeights`` become
safetensors with their JSON spec in the header. One file per asset (and per
partition: ``<root>/<asset key path>/<quoted partition>.npz``), replaced atomically.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dagster as dg
from pydantic import Field

import bio_assets.core.search.outcome  # noqa: F401  (registers SearchOutcome for loading)
from bio_assets.core.data.class_names import check_class_name
from bio_assets.core.io.storage import ModelWeights, load_record, load_weights, save_record, save_weights
from resources.paths import data_home

SUFFIXES = (".npz", ".safetensors")


class AssetFileIOManager(dg.ConfigurableIOManager):
    """Persists asset values as ``.npz`` / ``.safetensors`` files; never pickles."""

    root: str = Field(default_factory=lambda: str(data_home() / "storage"))

    def _stem(self, key: dg.AssetKey, partition: str | None) -> Path:
        # Partition keys are class (or model) names: checked by the class-name rule (no '.' or '..',
        # which would name the folder itself) and quoted, so any accepted name is one safe file name.
        leaf = quote(check_class_name(partition), safe="") if partition is not None else "value"
        return Path(self.root).joinpath(*key.path) / leaf

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        stem = self._stem(context.asset_key, context.partition_key if context.has_asset_partitions else None)
        if isinstance(obj, ModelWeights):
            path = stem.with_suffix(".safetensors")
            save_weights(path, obj.state_dict, obj.spec)
        else:
            path = stem.with_suffix(".npz")
            save_record(path, obj)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_stored(self, key: dg.AssetKey, partition: str | None) -> object:
        """The stored value of ``key`` (and partition), for readers that are not asset inputs."""
        return self._load_one(key, partition)

    def _load_one(self, key: dg.AssetKey, partition: str | None) -> object:
        stem = self._stem(key, partition)
        if stem.with_suffix(".npz").exists():
            return load_record(stem.with_suffix(".npz"))
        if stem.with_suffix(".safetensors").exists():
            state_dict, spec = load_weights(stem.with_suffix(".safetensors"))
            return ModelWeights(state_dict=state_dict, spec=spec)
        where = f" partition {partition!r}" if partition is not None else ""
        raise FileNotFoundError(f"no stored value for {key.to_user_string()}{where} at {stem}.*; materialize it first")

    def load_input(self, context: dg.InputContext) -> object:
        key = context.asset_key
        if not context.has_asset_partitions:
            return self._load_one(key, None)
        partitions = list(context.asset_partition_keys)
        if context.has_partition_key and partitions == [context.partition_key]:
            # Same-partition dependency (class -> class): the value itself.
            return self._load_one(key, partitions[0])
        # A consumer of every class (unpartitioned, or partitioned otherwise): all classes by name.
        return {partition: self._load_one(key, partition) for partition in sorted(partitions)}
