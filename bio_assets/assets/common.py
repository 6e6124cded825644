"""What the assets share: their keywords (key prefix, group, pool, kinds, owners, code version),
the settings a run gives them (the run's profile, the dataset's own values) and the data inputs
most of them read."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg
import yaml

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
# Where steps run (jobs/executors.py reads it too): in_process, celery or k8s.
EXECUTOR_ENV = "BIO_ASSETS_STEP_EXECUTOR"
# On Kubernetes: a YAML mapping from a tag of NETWORK_TAGS to the dagster-k8s/config (GPU requests,
# node selector, tolerations) every op carrying that tag gets (deploy/helm/values.yaml).
K8S_TAG_CONFIG_ENV = "BIO_ASSETS_K8S_TAG_CONFIG"
K8S_CONFIG_TAG = "dagster-k8s/config"


def network_op_tags(environment: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The op tags of a step that runs a network: the accelerator declaration, the Celery queue, and
    on Kubernetes the pod config the deployment maps the declaration to."""
    tags = {**NETWORK_TAGS, CELERY_QUEUE_TAG: GPU_QUEUE}
    mapping = yaml.safe_load(environment.get(K8S_TAG_CONFIG_ENV) or "{}") or {}
    if not isinstance(mapping, dict):
        raise ValueError(f"{K8S_TAG_CONFIG_ENV} must be a YAML mapping of op tag -> dagster-k8s/config")
    configs = [mapping[tag] for tag in NETWORK_TAGS if tag in mapping]
    if configs:
        tags[K8S_CONFIG_TAG] = json.dumps(configs[0])
    return tags


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
        if os.environ.get(EXECUTOR_ENV) == "k8s":
            # A GPU pod lost with its node is a step failure, which crash-only run retries skip; the
            # retried step resumes from its search state or checkpoint on the shared volume.
            options["retry_policy"] = dg.RetryPolicy(max_retries=1)
    options["op_tags"] = network_op_tags() if network else {CELERY_QUEUE_TAG: CPU_QUEUE}
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
