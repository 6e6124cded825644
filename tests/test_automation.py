"""Automation: the dataset sensor records a data version per changed class (cheaply, per dataset),
and each rebuild rule of the cost policy, evaluated with ``dg.evaluate_automation_conditions``."""

from __future__ import annotations

import datetime
import shutil

import dagster as dg
import numpy as np
import pytest
from PIL import Image

from bio_assets.assets.partitions import class_partition_changes
from bio_assets.core.data.fingerprint import DigestCache, class_fingerprint
from bio_assets.core.registry import DatasetEntry, save_registry
from bio_assets.definitions import build_definitions
from jobs.automation import DATA_VERSION_TAG, REBUILD_POLICY
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager
from tests.conftest import TINY_CLASSES, write_class_images

KEY = {name: dg.AssetKey(["tiny", name]) for name in REBUILD_POLICY}
FOLDER = dg.AssetKey(["tiny", "image_folder"])
CLASS_SET = dg.AssetKey(["tiny", "class_set"])


@pytest.fixture
def setup(tmp_path, tiny_dataset):
    entries = [
        DatasetEntry(
            "tiny", str(tiny_dataset), profile="demo", settings={"augmented_dataset": {"target_per_class": 10}}
        )
    ]
    registry = tmp_path / "registry.yaml"
    save_registry(registry, entries)
    resources = {
        "image_dataset": ImageDatasetResource(registry_file=str(registry)),
        "io_manager": AssetFileIOManager(root=str(tmp_path / "storage")),
        "compute": ComputeResource(device="cpu", amp=False),
    }
    defs = build_definitions(entries, resources)
    with dg.instance_for_test() as instance:
        yield defs, instance, resources, tiny_dataset


def tick(defs, instance, resources, cursor):
    """One evaluation of dataset_sensor, with its partition requests and events applied as the daemon would."""
    sensor = defs.resolve_sensor_def("dataset_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs) as context:
        result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)
    return result


def observed(result) -> list[str]:
    """The classes whose folder the tick observed."""
    return sorted(e.partition for e in result.asset_events or [] if e.asset_key == FOLDER)


def materialize(defs, instance, names, class_name=None):
    assets = [*[a for a in defs.assets if isinstance(a, dg.AssetsDefinition)], *defs.asset_checks]
    selection = dg.AssetSelection.assets(*[KEY[n] for n in names])  # with their checks
    result = dg.materialize(
        assets, instance=instance, partition_key=class_name, resources=defs.resources, selection=selection,
        raise_on_error=False,
    )  # fmt: skip
    return result


def test_sensor_adds_partitions_then_records_one_version_per_class_and_change(setup):
    defs, instance, resources, root = setup
    first = tick(defs, instance, resources, None)
    (add,) = first.dynamic_partitions_requests
    assert sorted(add.partition_keys) == TINY_CLASSES and observed(first) == []  # partitions first
    second = tick(defs, instance, resources, first.cursor)
    assert observed(second) == TINY_CLASSES
    versions = {e.partition: e.tags[DATA_VERSION_TAG] for e in second.asset_events}
    assert len(set(versions.values())) == 3
    assert observed(tick(defs, instance, resources, second.cursor)) == []  # no change, no event
    original = (root / "Koilocytotic" / "img_000.png").read_bytes()
    write_class_images(root / "Koilocytotic", "Koilocytotic", 1, seed=99)  # new bytes in one file
    changed = tick(defs, instance, resources, second.cursor)
    assert observed(changed) == ["Koilocytotic"]
    # A folder that returns to an earlier state is a change too (no run key blocks it).
    (root / "Koilocytotic" / "img_000.png").write_bytes(original)
    reverted = tick(defs, instance, resources, changed.cursor)
    assert observed(reverted) == ["Koilocytotic"]
    assert reverted.asset_events[0].tags[DATA_VERSION_TAG] == versions["Koilocytotic"]


def test_a_broken_dataset_never_stops_the_others(tmp_path, tiny_dataset):
    entries = [DatasetEntry("gone", str(tmp_path / "missing")), DatasetEntry("tiny", str(tiny_dataset))]
    save_registry(tmp_path / "r.yaml", entries)
    resources = {"image_dataset": ImageDatasetResource(registry_file=str(tmp_path / "r.yaml"))}
    defs = build_definitions(entries, resources)
    with dg.instance_for_test() as instance:
        first = tick(defs, instance, resources, None)
        assert [r.partitions_def_name for r in first.dynamic_partitions_requests] == ["tiny__classes"]
        assert observed(tick(defs, instance, resources, first.cursor)) == TINY_CLASSES


def test_new_and_vanished_class_folders_become_partition_requests(setup):
    defs, instance, resources, root = setup
    first = tick(defs, instance, resources, None)
    write_class_images(root / "Parabasal", "Parabasal", 4)
    shutil.rmtree(root / "Dyskeratotic")
    second = tick(defs, instance, resources, first.cursor)
    kinds = {type(r).__name__: sorted(r.partition_keys) for r in second.dynamic_partitions_requests}
    assert kinds == {"AddDynamicPartitionsRequest": ["Parabasal"], "DeleteDynamicPartitionsRequest": ["Dyskeratotic"]}


def test_a_removed_class_is_an_update_of_the_class_set_for_the_assets_that_read_every_class(setup):
    defs, instance, resources, root = setup
    graph = defs.resolve_asset_graph()
    readers = {k.path[-1] for k in graph.get(CLASS_SET).child_keys}
    assert readers == {
        "searched_cell", "feature_extractors", "generator", "baseline_classifiers", "optimizer_comparison",
        "gan_baselines", "extended_classifier", "metric_reports",
    }  # fmt: skip
    reports = KEY["metric_reports"]
    updated = dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets(CLASS_SET))
    watched = dg.Definitions(
        assets=[
            a.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=updated))
            if isinstance(a, dg.AssetsDefinition) and reports in a.keys
            else a
            for a in defs.assets
        ],
        resources=defs.resources,
    )
    first = tick(defs, instance, resources, None)
    only_reports = dg.AssetSelection.assets(reports)
    before = dg.evaluate_automation_conditions(defs=watched, instance=instance, asset_selection=only_reports)
    (recorded,) = [e for e in first.asset_events if e.asset_key == CLASS_SET]  # the first tick: never "missing"
    assert recorded.metadata["removed"].value == [] and before.get_num_requested(reports) == 0
    again = tick(defs, instance, resources, first.cursor)
    assert not [e for e in again.asset_events if e.asset_key == CLASS_SET]  # nothing removed: nothing recorded
    first = again
    from jobs.automation import first_class_set

    with dg.instance_for_test() as built:  # an instance whose readers are built: no first record
        built.report_runless_asset_event(dg.AssetMaterialization(KEY["searched_cell"]))
        assert not first_class_set(built, "tiny") and first_class_set(dg.DagsterInstance.ephemeral(), "tiny")
    shutil.rmtree(root / "Dyskeratotic")
    second = tick(defs, instance, resources, first.cursor)
    (event,) = [e for e in second.asset_events if e.asset_key == CLASS_SET]
    assert event.metadata["removed"].value == ["Dyskeratotic"]
    after = dg.evaluate_automation_conditions(
        defs=watched, instance=instance, asset_selection=only_reports, cursor=before.cursor
    )
    assert after.get_num_requested(reports) == 1  # the report is rebuilt without the removed class


def test_a_folder_too_large_for_one_tick_is_read_over_several_ticks(setup, monkeypatch):
    """Reading a file costs one second of a fake clock and a tick may read for 10: the 24 files of the
    3 classes take several ticks, the digests read stay cached, and each class is observed once."""
    from types import SimpleNamespace

    import bio_assets.core.data.fingerprint as fingerprint
    import jobs.automation as automation

    defs, instance, resources, _ = setup
    seconds = [0.0]
    reading = fingerprint.DigestCache.digest

    def slow_digest(self, path):
        before = self.files_read
        digest = reading(self, path)
        seconds[0] += self.files_read - before  # a file read, not a cached digest
        return digest

    clock = SimpleNamespace(monotonic=lambda: seconds[0])
    monkeypatch.setattr(fingerprint.DigestCache, "digest", slow_digest)
    monkeypatch.setattr(fingerprint, "time", clock)
    monkeypatch.setattr(automation, "time", clock)
    monkeypatch.setattr(automation, "FINGERPRINT_SECONDS_PER_TICK", 10.0)
    result = tick(defs, instance, resources, None)  # adds the partitions; classes are observed from the next tick
    per_tick = []
    for _ in range(3):
        result = tick(defs, instance, resources, result.cursor)
        per_tick.append(observed(result))
    assert seconds[0] == 24  # every file read once over the ticks
    assert 0 < len(per_tick[0]) < len(TINY_CLASSES)  # one tick could not read everything
    assert sorted(c for classes in per_tick for c in classes) == sorted(TINY_CLASSES)  # each once, all in the end


def test_a_folder_that_suddenly_holds_no_class_deletes_no_partition(setup):
    defs, instance, resources, root = setup
    first = tick(defs, instance, resources, None)
    for folder in list(root.iterdir()):
        shutil.rmtree(folder)  # as an unmounted disk looks
    second = tick(defs, instance, resources, first.cursor)
    assert not second.dynamic_partitions_requests
    assert sorted(instance.get_dynamic_partitions("tiny__classes")) == sorted(TINY_CLASSES)
    with pytest.raises(ValueError, match="holds no class folder now.*no partition is deleted"):  # what the log says
        class_partition_changes("tiny", set(TINY_CLASSES), set())
    assert class_partition_changes("tiny", set(), set()) == ([], [])  # a new, still empty dataset is fine


def test_the_rebuild_window_opens_in_the_datasets_time_zone(tmp_path, tiny_dataset):
    entry = DatasetEntry("tiny", str(tiny_dataset), profile="demo", rebuild_timezone="Asia/Tokyo")
    defs = build_definitions([entry], {})
    label = defs.resolve_asset_graph().get(KEY["searched_cell"]).automation_condition.get_label()
    assert "'0 2 * * *', Asia/Tokyo" in label
    with pytest.raises(ValueError, match="rebuild_timezone 'Mars/Olympus' is not an IANA time zone"):
        DatasetEntry("tiny", str(tiny_dataset), rebuild_timezone="Mars/Olympus")


def test_only_files_whose_stat_changed_are_read_again(tiny_dataset, tmp_path):
    folder = tiny_dataset / "Metaplastic"
    cache = DigestCache(tmp_path / "digests.json")
    before = class_fingerprint(folder, "*", tiny_dataset, cache=cache)
    cache.save()
    assert cache.files_read == 8
    again = DigestCache(tmp_path / "digests.json")
    assert class_fingerprint(folder, "*", tiny_dataset, cache=again) == before
    assert (again.files_read, again.files_reused) == (0, 8)
    write_class_images(folder, "Metaplastic", 1, seed=5)
    third = DigestCache(tmp_path / "digests.json")
    assert class_fingerprint(folder, "*", tiny_dataset, cache=third) != before
    assert third.files_read == 1


def evaluate(defs, instance, cursor=None, when=None):
    """One evaluation of every automation condition, reading each dynamic partition set once, as
    the daemon's caching queryer does: the tester reads it from the instance for every subset it
    serializes into the cursor (thousands of queries, 90% of this file's time otherwise)."""
    read = instance.get_dynamic_partitions
    cache: dict[str, list[str]] = {}

    def read_once(partitions_def_name: str) -> list[str]:
        if partitions_def_name not in cache:
            cache[partitions_def_name] = read(partitions_def_name)
        return cache[partitions_def_name]

    instance.get_dynamic_partitions = read_once
    try:
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor, evaluation_time=when)
    finally:
        del instance.get_dynamic_partitions  # the instance's own method again


@pytest.mark.slow(seconds=16)
def test_cheap_assets_follow_a_new_data_version_and_their_parents_at_once(setup):
    defs, instance, resources, root = setup
    cursor = tick(defs, instance, resources, None).cursor
    baseline = evaluate(defs, instance)
    assert baseline.total_requested == 0  # automation never builds a missing graph on its own
    for name in TINY_CLASSES:
        assert materialize(defs, instance, ["raw_images", "image_splits", "augmented_dataset"], name).success
    cursor = tick(defs, instance, resources, cursor).cursor
    quiet = evaluate(defs, instance, baseline.cursor)
    assert quiet.total_requested == 0  # raw_images recorded the version it read: nothing to follow
    write_class_images(root / "Koilocytotic", "Koilocytotic", 1, seed=7)
    assert observed(tick(defs, instance, resources, cursor)) == ["Koilocytotic"]
    after = evaluate(defs, instance, quiet.cursor)
    assert after.get_requested_partitions(KEY["raw_images"]) == {"Koilocytotic"}
    assert after.get_requested_partitions(KEY["image_splits"]) == {"Koilocytotic"}  # with its parent
    assert after.get_num_requested(KEY["searched_cell"]) == 0  # costly: waits for its window


@pytest.mark.slow(seconds=9)
def test_nothing_follows_a_failed_blocking_check(setup):
    defs, instance, resources, root = setup
    tick(defs, instance, resources, None)  # the class partitions
    evaluation = evaluate(defs, instance)
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(root / "Metaplastic" / "blank.png")
    result = materialize(defs, instance, ["raw_images"], "Metaplastic")  # raw_images_valid fails: a blank image
    assert not result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["raw_images_valid"] is False
    for name in ("Dyskeratotic",):
        materialize(defs, instance, ["raw_images"], name)
    after = evaluate(defs, instance, evaluation.cursor)
    assert after.get_requested_partitions(KEY["image_splits"]) == {"Dyskeratotic"}


@pytest.mark.slow(seconds=24)
def test_costly_assets_wait_for_their_window_and_run_once_per_window(setup):
    defs, instance, resources, _ = setup
    tick(defs, instance, resources, None)  # the class partitions
    day = datetime.datetime(2026, 11, 27, 10, 0, tzinfo=datetime.timezone.utc)
    first = evaluate(defs, instance, when=day)
    for name in TINY_CLASSES:
        assert materialize(defs, instance, ["raw_images", "image_splits", "augmented_dataset"], name).success
    same_day = evaluate(defs, instance, first.cursor, when=day + datetime.timedelta(hours=1))
    assert same_day.get_num_requested(KEY["searched_cell"]) == 0
    night = evaluate(defs, instance, same_day.cursor, when=day + datetime.timedelta(hours=16, minutes=5))  # 02:05
    costly = [n for n, policy in REBUILD_POLICY.items() if policy == "window"]
    roots = {n for n in costly if night.get_num_requested(KEY[n])}
    # The roots of the costly part (their parents are all up to date) are requested in the window...
    assert {"searched_cell", "feature_extractors", "baseline_classifiers", "optimizer_comparison"} <= roots
    # ...and not again in the same window while nothing new happened.
    later = evaluate(defs, instance, night.cursor, when=day + datetime.timedelta(hours=17))
    assert later.get_num_requested(KEY["searched_cell"]) == 0


def test_every_asset_has_a_readable_rebuild_rule(setup):
    defs, _, _, _ = setup
    graph = defs.resolve_asset_graph()
    for name, policy in REBUILD_POLICY.items():
        if policy == "manual":  # opt-in studies: only a person starts them
            assert graph.get(KEY[name]).automation_condition is None, name
            continue
        label = graph.get(KEY[name]).automation_condition.get_label()
        assert label.startswith("follows its inputs" if policy == "follow" else "costly:"), (name, label)
    assert "once per window ('0 2 * * *', UTC)" in graph.get(KEY["trained_gan"]).automation_condition.get_label()
