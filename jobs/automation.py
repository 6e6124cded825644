"""The ``dataset_sensor`` and the nightly schedule: rebuild the classes whose files changed."""

import json
from dataclasses import dataclass

import dagster as dg

from bio_assets.assets.metadata import latest_metadata
from bio_assets.assets.partitions import asset_key, class_partitions_name
from bio_assets.core.data.fingerprint import dataset_fingerprints
from bio_assets.core.registry import DatasetEntry
from jobs.pipelines import pipeline_job_name
from resources.image_dataset import ImageDatasetResource


@dataclass(frozen=True)
class ClassChange:
    dataset: str
    class_name: str
    fingerprint: str

    def run_request(self, profile: str) -> dg.RunRequest:
        # The run key makes a change requested once, however often it is seen.
        return dg.RunRequest(
            run_key=f"{self.dataset}/{self.class_name}/{self.fingerprint[:16]}",
            job_name=pipeline_job_name(self.dataset, profile),
            partition_key=self.class_name,
            tags={"bio_assets/source_fingerprint": self.fingerprint},
        )


def current_fingerprints(image_dataset: ImageDatasetResource, dataset: str) -> dict[str, str]:
    """Class name -> content fingerprint of the dataset's class folders as they are now."""
    layout = image_dataset.layout(dataset)
    return dataset_fingerprints(layout.class_folders(), layout.file_pattern, layout.root)


def stale_classes(instance: dg.DagsterInstance, dataset: str, fingerprints: dict[str, str]) -> list[ClassChange]:
    """Classes whose current files differ from those behind their newest ``raw_images``."""
    key = asset_key(dataset, "raw_images")
    return [
        ClassChange(dataset, name, print_)
        for name, print_ in sorted(fingerprints.items())
        if latest_metadata(instance, key, name).get("source_fingerprint") != print_
    ]


def partition_sync_requests(instance: dg.DagsterInstance, dataset: str, class_names: set[str]) -> list:
    """Add partitions for new class folders, delete those whose folder is gone."""
    name = class_partitions_name(dataset)
    existing = set(instance.get_dynamic_partitions(name))
    requests: list = []
    if class_names - existing:
        requests.append(dg.AddDynamicPartitionsRequest(name, sorted(class_names - existing)))
    if existing - class_names:
        requests.append(dg.DeleteDynamicPartitionsRequest(name, sorted(existing - class_names)))
    return requests


def build_automation(entries: list[DatasetEntry], jobs: list) -> list:
    """The sensor and the schedule over every registered dataset."""

    @dg.sensor(
        name="dataset_sensor",
        jobs=jobs,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds class partitions for new class folders and rebuilds classes whose files changed.",
    )
    def dataset_sensor(context: dg.SensorEvaluationContext, image_dataset: ImageDatasetResource) -> dg.SensorResult:
        # Cursor: dataset -> class -> fingerprint already requested (no duplicate requests).
        requested: dict[str, dict[str, str]] = json.loads(context.cursor) if context.cursor else {}
        run_requests, partition_requests = [], []
        for entry in entries:
            fingerprints = current_fingerprints(image_dataset, entry.name)
            partition_requests += partition_sync_requests(context.instance, entry.name, set(fingerprints))
            seen = requested.setdefault(entry.name, {})
            for change in stale_classes(context.instance, entry.name, fingerprints):
                if seen.get(change.class_name) != change.fingerprint:
                    run_requests.append(change.run_request(entry.profile))
                    seen[change.class_name] = change.fingerprint
            for gone in set(seen) - set(fingerprints):
                del seen[gone]
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=partition_requests,
            cursor=json.dumps(requested, sort_keys=True),
        )

    follow_upstream = dg.AutomationConditionSensorDefinition(
        "follow_upstream",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Brings assets with automation conditions (eager: follow their parents) up to date.",
    )
    return [dataset_sensor, follow_upstream] + [build_nightly_schedule(entry) for entry in entries]


def build_nightly_schedule(entry: DatasetEntry) -> dg.ScheduleDefinition:
    """``<dataset>__nightly_rebuild``: at 02:00, rebuild the classes that are missing or changed."""

    @dg.schedule(
        name=f"{entry.name}__nightly_rebuild",
        cron_schedule="0 2 * * *",
        job_name=pipeline_job_name(entry.name, entry.profile),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every night at 02:00, rebuilds the classes of '{entry.name}' that are missing or changed.",
    )
    def nightly_rebuild(context: dg.ScheduleEvaluationContext, image_dataset: ImageDatasetResource):
        fingerprints = current_fingerprints(image_dataset, entry.name)
        known = set(context.instance.get_dynamic_partitions(class_partitions_name(entry.name)))
        requests = [
            c.run_request(entry.profile)
            for c in stale_classes(context.instance, entry.name, fingerprints)
            if c.class_name in known
        ]
        return requests or dg.SkipReason("every class is up to date")

    return nightly_rebuild
