"""The UI path with real processes: `bio-assets ui` (code server, webserver, daemon) on a temporary
instance with the project's dagster.yaml. "Materialize all" with every class partition, sent as the
UI sends it, builds every asset and partition; a SIGKILLed run worker is failed by run monitoring,
its pool slot freed, and the next run proceeds; stopping the service cancels what is in flight."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from bio_assets.app.driver import OPT_IN_GROUPS
from bio_assets.app.processes import run_processes
from bio_assets.app.service import in_progress_runs
from bio_assets.app.webserver import FINISHED_BACKFILL_STATES, DagsterWebserver
from bio_assets.assets.metadata import latest_metadata
from bio_assets.core.registry import load_registry, save_registry
from bio_assets.definitions import load_definitions
from tests.conftest import TINY_CLASSES, TINY_SEARCH, running_ui, service_stopped, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow(seconds=150)]
ROOT = Path(__file__).resolve().parents[1]


def every_partition(instance, defs, dataset):
    """(asset, partition) for every materializable asset of ``dataset``'s method graph (the opt-in
    studies left out, as `bio-assets materialize` leaves them) and each of its partitions."""
    graph = defs.resolve_asset_graph()
    pairs = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[0] != dataset or not node.is_materializable or node.group_name in OPT_IN_GROUPS:
            continue
        if node.partitions_def is None:
            pairs.append((key, None))
        elif isinstance(node.partitions_def, dg.DynamicPartitionsDefinition):
            pairs += [(key, p) for p in instance.get_dynamic_partitions(node.partitions_def.name)]
        else:
            pairs += [(key, p) for p in node.partitions_def.get_partition_keys()]
    return pairs


def claimed_slots(instance) -> list:
    return instance.event_log_storage.get_concurrency_info("gpu").claimed_slots


def backfill_done(web, backfill_id):
    status = web.backfill_status(backfill_id)
    return status if status in FINISHED_BACKFILL_STATES else None


def evaluations_logged(instance, run_id: str) -> int:
    """How many candidate evaluations a search run logged ("[3/5] <code>: val acc ...")."""
    return sum(1 for e in instance.all_logs(run_id) if e.user_message.startswith("[") and "val acc" in e.user_message)


def test_materialize_all_builds_every_asset_and_partition_and_a_killed_worker_is_released(service_home):
    with running_ui(service_home, cwd=ROOT) as (_, service):
        web = DagsterWebserver(service.url)
        with dg.DagsterInstance.get() as instance:
            defs = load_definitions()
            instance.add_dynamic_partitions("tiny__classes", TINY_CLASSES)
            keys = sorted({key for key, _ in every_partition(instance, defs, "tiny")}, key=str)
            # As the UI's "Materialize all" with partitions "All": the asset selection and the
            # selected partitions of the (class-partitioned) roots.
            backfill = web.launch_backfill(keys, partitions=TINY_CLASSES, tags={}, title="Materialize all")
            status = wait_for(lambda: backfill_done(web, backfill), 1800, "the backfill", every=3)
            missing = [
                f"{key.to_user_string()} [{partition}]"
                for key, partition in every_partition(instance, defs, "tiny")
                if not latest_metadata(instance, key, partition)
            ]
            assert missing == [] and status == "COMPLETED_SUCCESS"
            assert len(keys) == 16 and {"tiny/synthetic_dataset", "tiny/metric_reports"} <= {
                str(k.to_user_string()) for k in keys
            }
            synthetic = latest_metadata(instance, dg.AssetKey(["tiny", "synthetic_dataset"]), "Koilocytotic")
            assert synthetic["profile"] == "demo" and synthetic["dagster/row_count"] == 8
            assert not in_progress_runs(instance)

            # A run worker SIGKILLed in the middle of a training step (a slower search this time).
            registry = Path(os.environ["BIO_ASSETS_REGISTRY"])
            (entry,) = load_registry(registry)
            slower = {**entry.settings, "searched_cell": {**TINY_SEARCH, "epochs": 30, "cycles": 3}}
            save_registry(registry, [replace(entry, settings=slower)])
            cell = dg.AssetKey(["tiny", "searched_cell"])
            second = web.launch_backfill([cell], partitions=None, tags={}, title="search again")

            def training_run():
                runs = [r for r in instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": second}))]
                started = [r for r in runs if r.status == dg.DagsterRunStatus.STARTED]
                if not started or not run_processes(instance, started[0]).worker_alive() or not claimed_slots(instance):
                    return None
                # Killed after its first evaluation, so the rerun has something to resume.
                return started[0] if evaluations_logged(instance, started[0].run_id) else None

            run = wait_for(training_run, 300, "a run holding the gpu pool slot, one evaluation done")
            worker = run_processes(instance, run).worker[0]
            os.kill(worker, signal.SIGKILL)
            killed_at = time.monotonic()
            failed = wait_for(
                lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE, 60, "run failure"
            )
            assert failed and time.monotonic() - killed_at < 40  # run_monitoring: poll 5 s
            wait_for(lambda: not claimed_slots(instance), 60, "the freed pool slot")
            # The crash-only retry (or the backfill's next run) materializes the asset.
            before = instance.get_latest_materialization_event(cell).run_id
            wait_for(lambda: instance.get_latest_materialization_event(cell).run_id != before, 600, "the rerun")
            final = instance.get_latest_materialization_event(cell).run_id
            assert latest_metadata(instance, cell, None)["num_evaluations"] == 5
            # Evaluations finished before the kill are resumed, not repeated.
            assert evaluations_logged(instance, final) < 5
    assert service_stopped(service_home)
    with dg.DagsterInstance.get() as instance:
        assert not in_progress_runs(instance)
