"""Clients of one instance's service, with real processes: a client that leaves stops nothing another
still uses; with the UI running, a dataset registered from another folder is reloaded into the service
and materialized, and Ctrl-C on the UI waits for that client; Ctrl-C while the service starts exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pytest

from bio_assets.app.service import DataPaths, ServiceFiles, in_progress_runs, service_client
from bio_assets.app.webserver import FINISHED_BACKFILL_STATES, DagsterWebserver
from tests.conftest import TINY_CLASSES, running_ui, service_stopped, wait_for, write_class_images

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[1]


def finished(web: DagsterWebserver, backfill_id: str) -> str | None:
    status = web.backfill_status(backfill_id)
    return status if status in FINISHED_BACKFILL_STATES else None


def materialized_partitions(key: dg.AssetKey) -> set[str]:
    with dg.DagsterInstance.get() as instance:
        return set(instance.get_materialized_partitions(key))


@pytest.mark.slow(seconds=120)
def test_the_first_client_leaving_stops_nothing_the_second_still_uses(service_home):
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("tiny__classes", TINY_CLASSES)
    raw, cell = dg.AssetKey(["tiny", "raw_images"]), dg.AssetKey(["tiny", "searched_cell"])
    with ExitStack() as first_client:
        first = first_client.enter_context(service_client(service_home, paths=DataPaths.current()))
        with service_client(service_home, paths=DataPaths.current()) as second:
            assert second.url == first.url and second.client_id != first.client_id
            web = DagsterWebserver(first.url)
            quick = web.launch_backfill([raw], partitions=TINY_CLASSES, tags=first.tags, title="first: quick")
            long = web.launch_backfill(
                [raw, dg.AssetKey(["tiny", "augmented_dataset"]), dg.AssetKey(["tiny", "image_splits"]), cell],
                partitions=TINY_CLASSES, tags=second.tags, title="second: long",
            )  # fmt: skip
            assert wait_for(lambda: finished(web, quick), 300, "the quick backfill", every=2) == "COMPLETED_SUCCESS"
            first_client.close()  # the first client ends while the second's backfill runs
            assert finished(web, long) is None
            assert wait_for(lambda: finished(web, long), 600, "the long backfill", every=2) == "COMPLETED_SUCCESS"
    assert materialized_partitions(raw) == set(TINY_CLASSES)
    with dg.DagsterInstance.get() as instance:
        assert instance.get_latest_materialization_event(cell) is not None
        assert not in_progress_runs(instance)
    wait_for(lambda: service_stopped(service_home), 60, "the service to stop once no client uses it")


@pytest.mark.slow(seconds=100)
def test_with_the_ui_running_a_new_dataset_from_another_folder_is_materialized(service_home, tmp_path, monkeypatch):
    # No path variables: the UI (started in the project) and the CLI (elsewhere) find the registry and
    # the data home beside the instance.
    monkeypatch.delenv("BIO_ASSETS_HOME")
    monkeypatch.delenv("BIO_ASSETS_REGISTRY")
    folder = tmp_path / "new_cells"
    for name in TINY_CLASSES[:2]:
        write_class_images(folder / name, name, 6)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with running_ui(service_home, cwd=ROOT) as (ui, service):
        command = [sys.executable, "-m", "bio_assets.app.cli", "materialize", "--dataset", str(folder),
                   "--profile", "demo", "--select", 'key:"new_cells/raw_images"']  # fmt: skip
        cli = subprocess.Popen(command, cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with dg.DagsterInstance.get() as instance:
            wait_for(lambda: cli.poll() is not None or instance.get_backfills(), 300, "the CLI's backfill")
        ui.send_signal(signal.SIGINT)  # Ctrl-C on the UI: it waits for the client that uses it
        output, _ = cli.communicate(timeout=300)
        assert cli.returncode == 0, output
        assert f"using the bio-assets service at {service.url}" in output and "reloading the code location" in output
        ui_output, _ = ui.communicate(timeout=120)
        assert ui.returncode == 0 and "1 client(s) still use this service" in ui_output, ui_output
    assert materialized_partitions(dg.AssetKey(["new_cells", "raw_images"])) == set(TINY_CLASSES[:2])
    assert (tmp_path / "datasets.yaml").read_text().count("new_cells") >= 1
    assert service_stopped(service_home)


@pytest.mark.slow(seconds=40)
def test_ctrl_c_while_the_service_starts_exits_130(service_home):
    command = [sys.executable, "-m", "bio_assets.app.cli", "materialize", "--name", "tiny", "--select", "group:data"]
    cli = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    files = ServiceFiles.of(service_home)
    wait_for(lambda: files.lock.exists() or cli.poll() is not None, 120, "the service to start starting", every=0.1)
    time.sleep(0.5)
    cli.send_signal(signal.SIGINT)
    output, _ = cli.communicate(timeout=60)
    assert cli.returncode == 128 + signal.SIGINT and "Traceback" not in output, output
    wait_for(lambda: service_stopped(service_home), 120, "the service without clients to stop")
    assert os.path.isdir(files.clients) and not list(files.clients.iterdir())
