"""dataset_sensor and the nightly schedule: new classes become partitions; only changed classes rerun."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from bio_assets.core.registry import DatasetEntry, save_registry
from bio_assets.definitions import build_definitions
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager
from tests.conftest import write_class_images


@pytest.fixture
def setup(tmp_path, tiny_dataset):
    entries = [DatasetEntry("tiny", str(tiny_dataset))]
    registry = tmp_path / "registry.yaml"
    save_registry(registry, entries)
    resources = {
        "image_dataset": ImageDatasetResource(registry_file=str(registry)),
        "io_manager": AssetFileIOManager(root=str(tmp_path / "storage")),
    }
    defs = build_definitions(entries, resources)
    with dg.instance_for_test() as instance:
        yield defs, instance, resources, tiny_dataset


def tick(defs, instance, resources, cursor):
    sensor = defs.resolve_sensor_def("dataset_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
    result = sensor(context)
    # Apply partition requests as the daemon would.
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def requested(result) -> list[str]:
    return sorted(r.partition_key for r in result.run_requests)


def materialize(defs, instance, class_name):
    job = defs.resolve_job_def("tiny__paper_pipeline")
    config = {"ops": {"tiny__augmented_dataset": {"config": {"target_per_class": 10}}}}
    assert job.execute_in_process(instance=instance, partition_key=class_name, run_config=config).success


def test_first_tick_adds_partitions_and_requests_every_class_once(setup):
    defs, instance, resources, _ = setup
    first = tick(defs, instance, resources, None)
    (add,) = first.dynamic_partitions_requests
    assert add.partitions_def_name == "tiny__classes" and sorted(add.partition_keys) == [
        "Dyskeratotic",
        "Koilocytotic",
        "Metaplastic",
    ]
    assert requested(first) == ["Dyskeratotic", "Koilocytotic", "Metaplastic"]
    assert all(r.job_name == "tiny__paper_pipeline" for r in first.run_requests)
    second = tick(defs, instance, resources, first.cursor)
    assert requested(second) == [] and not second.dynamic_partitions_requests


def test_only_the_changed_class_is_requested(setup):
    defs, instance, resources, root = setup
    first = tick(defs, instance, resources, None)
    for class_name in ("Dyskeratotic", "Koilocytotic", "Metaplastic"):
        materialize(defs, instance, class_name)
    assert requested(tick(defs, instance, resources, first.cursor)) == []
    # Edit one image's bytes in one class.
    write_class_images(root / "Koilocytotic", "Koilocytotic", 1, seed=99)
    changed = tick(defs, instance, resources, first.cursor)
    assert requested(changed) == ["Koilocytotic"]
    assert requested(tick(defs, instance, resources, changed.cursor)) == []  # not requested twice


def test_up_to_date_classes_are_not_requested_even_with_a_fresh_cursor(setup):
    defs, instance, resources, _ = setup
    tick(defs, instance, resources, None)
    materialize(defs, instance, "Metaplastic")
    assert requested(tick(defs, instance, resources, None)) == ["Dyskeratotic", "Koilocytotic"]


def test_new_class_folder_becomes_a_partition_and_a_run(setup):
    defs, instance, resources, root = setup
    first = tick(defs, instance, resources, None)
    write_class_images(root / "Parabasal", "Parabasal", 4)
    shutil.rmtree(root / "Dyskeratotic")
    second = tick(defs, instance, resources, first.cursor)
    kinds = {type(r).__name__: sorted(r.partition_keys) for r in second.dynamic_partitions_requests}
    assert kinds == {"AddDynamicPartitionsRequest": ["Parabasal"], "DeleteDynamicPartitionsRequest": ["Dyskeratotic"]}
    assert requested(second) == ["Parabasal"]


def test_nightly_schedule_requests_missing_or_changed_classes_only(setup):
    defs, instance, resources, root = setup
    instance.add_dynamic_partitions("tiny__classes", ["Dyskeratotic", "Koilocytotic", "Metaplastic"])
    schedule = defs.resolve_schedule_def("tiny__nightly_rebuild")
    for class_name in ("Dyskeratotic", "Koilocytotic"):
        materialize(defs, instance, class_name)
    context = dg.build_schedule_context(
        instance=instance, resources=resources, repository_def=defs.get_repository_def()
    )
    assert sorted(r.partition_key for r in schedule.evaluate_tick(context).run_requests) == ["Metaplastic"]
    materialize(defs, instance, "Metaplastic")
    (root / "Dyskeratotic" / "img_000.png").unlink()
    context = dg.build_schedule_context(
        instance=instance, resources=resources, repository_def=defs.get_repository_def()
    )
    assert sorted(r.partition_key for r in schedule.evaluate_tick(context).run_requests) == ["Dyskeratotic"]
