"""Declarative automation over the whole graph, with a cost policy a user can read in the UI.

- ``dataset_sensor`` keeps each dataset's class partitions equal to its class folders and
  records a data version per class (an observation of ``<dataset>/image_folder``) whenever a
  class's files change. Only files whose size, mtime or inode changed are read again.
- Every asset carries an automation condition from ``REBUILD_POLICY``:
  ``follow``: cheap per-class assets, synthesis, the extended classifier and the report are
  rebuilt as soon as their inputs change; ``window``: searches and trainings (hours on a GPU)
  are rebuilt when their inputs changed, at most once per window (the dataset's
  ``rebuild_cron``, nightly by default). Neither runs while it or a parent is in progress (so
  never two at once), while a parent is missing, or past a failed blocking check.
- ``follow_upstream`` is the sensor that evaluates these conditions (running by default).
"""

from __future__ import annotations

import json
import time

import dagster as dg

from bio_assets.assets.data import DATA_VERSION_TAG, class_set_key, class_set_observation, folder_observation
from bio_assets.assets.partitions import asset_key, class_partition_changes, class_partitions_name
from bio_assets.core.registry import DatasetEntry
from resources.image_dataset import ImageDatasetResource
from resources.paths import default_sensor_status

FOLLOW, WINDOW, MANUAL = "follow", "window", "manual"
# Of the 60 s a sensor tick may take, the time the dataset sensor spends reading files.
FINGERPRINT_SECONDS_PER_TICK = 30.0
REBUILD_POLICY: dict[str, str] = {
    "raw_images": FOLLOW,
    "image_splits": FOLLOW,
    "augmented_dataset": FOLLOW,
    "searched_cell": WINDOW,
    "macro_architecture": WINDOW,
    "classifier": WINDOW,
    "baseline_classifiers": WINDOW,
    "optimizer_comparison": WINDOW,
    "feature_extractors": WINDOW,
    "generator": WINDOW,
    "discriminator": WINDOW,
    "trained_gan": WINDOW,
    "gan_baselines": WINDOW,
    "synthetic_dataset": FOLLOW,
    "extended_classifier": FOLLOW,
    "metric_reports": FOLLOW,
    # Opt-in studies: only a person starts them (UI or `bio-assets materialize --select`).
    "data_efficiency": MANUAL,
}


def _guards(dataset: str) -> dg.AutomationCondition:
    """What every rule requires: parents present, nothing in progress, blocking checks passed. The class
    set is observed only when a class is removed: never observed, it is no missing parent."""
    return (
        ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(class_set_key(dataset)))
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    )


def follow_condition(dataset: str) -> dg.AutomationCondition:
    """Rebuild as soon as any input changed."""
    changed = dg.AutomationCondition.any_deps_updated().since_last_handled()
    return (changed & _guards(dataset)).with_label("follows its inputs: rebuilt as soon as an input changes")


def window_condition(dataset: str, cron: str, timezone: str = "UTC") -> dg.AutomationCondition:
    """Rebuild after an input changed, at most once per window of ``cron`` (local time of ``timezone``)."""
    window_opened = dg.AutomationCondition.cron_tick_passed(cron, timezone).since_last_handled()
    changed = dg.AutomationCondition.any_deps_updated().since_last_handled()
    label = f"costly: rebuilt when an input changed, at most once per window ({cron!r}, {timezone})"
    return (window_opened & changed & _guards(dataset)).with_label(label)


def with_rebuild_policy(assets: list, entry: DatasetEntry) -> list:
    """``assets`` with the automation condition of their policy; observable sources as they are."""

    def condition_for(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = REBUILD_POLICY.get(spec.key.path[-1])
        if policy is None:
            raise ValueError(f"{spec.key.to_user_string()} has no rebuild policy in jobs/automation.py")
        if policy == MANUAL:
            return spec
        if policy == FOLLOW:
            condition = follow_condition(entry.name)
        else:
            condition = window_condition(entry.name, entry.rebuild_cron, entry.rebuild_timezone)
        return spec.replace_attributes(automation_condition=condition)

    return [
        a.map_asset_specs(condition_for) if isinstance(a, dg.AssetsDefinition) and a.is_materializable else a
        for a in assets
    ]


def partition_sync_requests(instance: dg.DagsterInstance, dataset: str, class_names: set[str]) -> list:
    """Add partitions for new class folders, delete those whose folder is gone (never all of them)."""
    name = class_partitions_name(dataset)
    added, removed = class_partition_changes(dataset, set(instance.get_dynamic_partitions(name)), class_names)
    requests: list = []
    if added:
        requests.append(dg.AddDynamicPartitionsRequest(name, added))
    if removed:
        requests.append(dg.DeleteDynamicPartitionsRequest(name, removed))
    return requests


def recorded_version(instance: dg.DagsterInstance, dataset: str, class_name: str) -> str | None:
    """The data version of the newest observation of ``<dataset>/image_folder`` for a class
    (``raw_images`` records one for the files it ingested)."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=asset_key(dataset, "image_folder"), asset_partitions=[class_name]), limit=1
    ).records
    observation = records[0].asset_observation if records else None
    return observation.tags.get(DATA_VERSION_TAG) if observation is not None else None


CLASS_SET_READERS = (
    "searched_cell", "feature_extractors", "generator", "baseline_classifiers", "optimizer_comparison",
    "gan_baselines", "extended_classifier", "metric_reports",
)  # fmt: skip


def first_class_set(instance: dg.DagsterInstance, dataset: str) -> bool:
    """Whether to record the class set before any removal: once, on an instance where none of its readers
    is built yet (unobserved, it would look missing in the lineage). Where they are built, a first record
    would read to them as a changed input and rebuild them for nothing: it waits for a real removal."""
    key = class_set_key(dataset)
    if instance.fetch_observations(dg.AssetRecordsFilter(asset_key=key), limit=1).records:
        return False
    return not any(instance.get_latest_materialization_event(asset_key(dataset, n)) for n in CLASS_SET_READERS)


def observe_dataset(
    instance: dg.DagsterInstance,
    image_dataset: ImageDatasetResource,
    entry: DatasetEntry,
    seen: dict[str, str],
    *,
    deadline: float | None = None,
) -> tuple[list, list[dg.AssetObservation]]:
    """Partition requests and an observation for each class whose version differs from the one
    recorded (``seen``, the cursor, caches it). New classes are observed on the next tick, once
    their partition exists. Classes not fingerprinted by ``deadline`` are observed on a later tick.
    Removed classes also give an observation of ``<dataset>/class_set``, which the assets that read
    every class depend on (a deleted partition is no event to them); so does the first tick of a new
    instance."""
    class_names = set(image_dataset.layout(entry.name).class_folders())
    requests = partition_sync_requests(instance, entry.name, class_names)
    versions = image_dataset.fingerprints(entry.name, deadline=deadline)
    known = set(instance.get_dynamic_partitions(class_partitions_name(entry.name)))
    observations = []
    if known - class_names or (class_names and first_class_set(instance, entry.name)):
        observations.append(class_set_observation(entry.name, class_names, sorted(known - class_names)))
    for class_name, version in sorted(versions.items()):
        if class_name not in known or seen.get(class_name) == version:
            continue
        if recorded_version(instance, entry.name, class_name) == version:
            seen[class_name] = version
            continue
        observations.append(folder_observation(entry.name, class_name, version))
        seen[class_name] = version
    for gone in set(seen) - class_names:
        del seen[gone]
    return requests, observations


def build_dataset_sensor(entries: list[DatasetEntry]) -> dg.SensorDefinition:
    @dg.sensor(
        name="dataset_sensor",
        minimum_interval_seconds=60,
        default_status=default_sensor_status(),
        description=(
            "Keeps class partitions equal to the class folders, records a new data version of "
            "<dataset>/image_folder for each class whose files changed, and of <dataset>/class_set when a "
            "class folder is removed."
        ),
    )
    def dataset_sensor(context: dg.SensorEvaluationContext, image_dataset: ImageDatasetResource) -> dg.SensorResult:
        # Cursor: dataset -> class -> the version last recorded (an observation per change, not per tick).
        seen: dict[str, dict[str, str]] = json.loads(context.cursor) if context.cursor else {}
        partition_requests, observations = [], []
        # Reading a large (or network-mounted) folder for the first time can take longer than a tick may
        # (60 s): what is not read by the deadline is read on the next ticks, the digests kept meanwhile.
        deadline = time.monotonic() + FINGERPRINT_SECONDS_PER_TICK
        for entry in entries:
            try:
                requests, observed = observe_dataset(
                    context.instance, image_dataset, entry, seen.setdefault(entry.name, {}), deadline=deadline
                )
            except (OSError, ValueError) as err:
                # A broken folder stops its own dataset only.
                context.log.error(f"dataset {entry.name!r} skipped this tick: {err}")
                continue
            partition_requests += requests
            observations += observed
        return dg.SensorResult(
            dynamic_partitions_requests=partition_requests,
            asset_events=observations,
            cursor=json.dumps(seen, sort_keys=True),
        )

    return dataset_sensor


def build_automation(entries: list[DatasetEntry]) -> list[dg.SensorDefinition]:
    """The dataset sensor and the sensor that evaluates every asset's automation condition."""
    follow_upstream = dg.AutomationConditionSensorDefinition(
        "follow_upstream",
        target=dg.AssetSelection.all(),
        default_status=default_sensor_status(),
        minimum_interval_seconds=30,
        description="Rebuilds assets by their rebuild policy: cheap ones at once, searches and trainings per window.",
    )
    return [build_dataset_sensor(entries), follow_upstream]
