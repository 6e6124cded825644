"""What the assets share: their keywords (key prefix, group, pool, kinds, owners, code version),
the settings a run gives them (the run's profile, the dataset's own values) and the data inputs
most of them read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from bio_assets.assets.partitions import asset_key
from bio_assets.core.profiles import PROFILES, resolve_settings
from bio_assets.core.registry import DatasetEntry

# The run tag that names the profile of a run: set by `bio-assets materialize --profile`, the job
# presets and, in the UI, by adding the tag to a launch. Without it the dataset's profile applies.
PROFILE_TAG = "bio_assets/profile"

# Every asset that runs a network declares it once, through ``asset_options(..., network=True)``:
# it runs in this pool (``dagster.yaml`` sets its limit to the number of accelerators, 1 on a
# CPU-only machine), leases a GPU of its own where there are GPUs (the ``compute`` resource) and
# carries NETWORK_TAGS: on Kubernetes they become GPU requests, on Celery the ``gpu`` queue.
NETWORK_POOL = "gpu"
NETWORK_TAGS = {"bio_assets/accelerator": "1"}
CELERY_QUEUE_TAG = "dagster-celery/queue"
GPU_QUEUE, CPU_QUEUE = "gpu", "cpu"


def asset_options(
    entry: DatasetEntry,
    group: str,
    *,
    partitions: dg.PartitionsDefinition | None = None,
    network: bool = False,
    kinds: tuple[str, ...] = (),
    code_version: str = "1",
    one_run: bool = False,
) -> dict:
    """The keywords of ``dg.asset`` every asset of ``entry`` takes, in one place. ``one_run``: the
    asset's body materializes every partition of ``context.partition_keys`` (one run per backfill)."""
    options: dict = {
        "key_prefix": [entry.name],
        "group_name": group,
        "code_version": code_version,
        "kinds": set(kinds) | ({"pytorch"} if network else set()),
    }
    if entry.owners:
        options["owners"] = list(entry.owners)
    if partitions is not None:
        options["partitions_def"] = partitions
    if one_run:
        # A backfill of several partitions (one per model) runs them in one run, one after the
        # other: a run costs seconds of start-up, more than many small models take to train.
        options["backfill_policy"] = dg.BackfillPolicy.single_run()
    if network:
        options["pool"] = NETWORK_POOL
    options["op_tags"] = {**NETWORK_TAGS, CELERY_QUEUE_TAG: GPU_QUEUE} if network else {CELERY_QUEUE_TAG: CPU_QUEUE}
    return options


def data_ins(dataset: str, *names: str, every_class: bool = False) -> dict[str, dg.AssetIn]:
    """Inputs on the dataset's assets ``names``; ``every_class`` reads all class partitions
    (for a consumer with other partitions, e.g. one model per partition)."""
    mapping = {"partition_mapping": dg.AllPartitionMapping()} if every_class else {}
    return {name: dg.AssetIn(key=asset_key(dataset, name), **mapping) for name in names}


@dataclass(frozen=True)
class RunSettings:
    """The resolved settings of one asset in one run, and where its profile came from."""

    profile: str
    profile_source: str  # "run tag" or "dataset registry"
    values: Mapping[str, object]

    def __getitem__(self, name: str) -> object:
        return self.values[name]

    def metadata(self) -> dict[str, str]:
        return {"profile": self.profile, "profile_source": self.profile_source}


def run_profile(context: dg.AssetExecutionContext, entry: DatasetEntry) -> tuple[str, str]:
    """The profile the run asked for (its ``bio_assets/profile`` tag), else the dataset's."""
    tagged = context.run.tags.get(PROFILE_TAG)
    if tagged is None:
        return entry.profile, "dataset registry"
    if tagged not in PROFILES:
        raise ValueError(f"run tag {PROFILE_TAG}={tagged!r} names no profile; choose one of {PROFILES}")
    return tagged, "run tag"


def run_settings(
    context: dg.AssetExecutionContext,
    entry: DatasetEntry,
    asset_name: str,
    values: Mapping[str, object],
    *,
    fallback: Mapping[str, object] | None = None,
) -> RunSettings:
    """``values`` (``None`` = not set in the run config) resolved through the dataset's settings,
    ``fallback`` and the run's profile."""
    profile, source = run_profile(context, entry)
    resolved = resolve_settings(values, profile, asset_name, dataset_settings=entry.settings, fallback=fallback)
    return RunSettings(profile, source, resolved)


def config_values(config: dg.Config, names: tuple[str, ...]) -> dict[str, object]:
    """The named fields of a run config, ``None`` where the run left them unset."""
    return {name: getattr(config, name) for name in names}
