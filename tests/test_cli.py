"""The bio-assets console script end to end: `materialize` launches a backfill on the instance's
service (started for the call, stopped once no client uses it) like the UI does; failures are named
by asset and class; SIGTERM cancels within seconds; a SIGKILLed CLI's work is canceled by the service
and the next call completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from bio_assets.app.cli import main
from bio_assets.app.service import in_progress_runs
from bio_assets.assets.metadata import latest_metadata
from bio_assets.core.registry import load_registry, save_registry
from resources.paths import registry_path
from tests.conftest import TINY_SEARCH, service_stopped, wait_for

ROOT = Path(__file__).resolve().parents[1]
CELL = dg.AssetKey(["tiny", "searched_cell"])


def materialized(dataset: str) -> dict[str, set[str]]:
    with dg.DagsterInstance.get() as instance:
        out = {}
        for key in instance.get_asset_keys(prefix=[dataset]):
            out[key.path[-1]] = set(instance.get_materialized_partitions(key))
        return out


@pytest.mark.e2e
@pytest.mark.slow(seconds=50)
def test_materialize_runs_a_backfill_with_the_runs_profile_and_names_a_failed_class(home, tiny_dataset, capsys):
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    for path in (tiny_dataset / "Koilocytotic").iterdir():
        path.write_bytes(b"broken")
    args = ["materialize", "--dataset", str(tiny_dataset), "--name", "tiny", "--profile", "demo"]
    assert main([*args, "--select", "group:data"]) == 1
    error = capsys.readouterr().err
    assert "tiny__raw_images [tiny class Koilocytotic]" in error and "has no valid image" in error
    (entry,) = [e for e in load_registry(registry_path()) if e.name == "tiny"]
    assert entry.folder == str(tiny_dataset) and entry.profile == "demo"  # a new folder takes the run's profile
    assert materialized("tiny")["augmented_dataset"] == {"Dyskeratotic", "Metaplastic"}
    with dg.DagsterInstance.get() as instance:
        metadata = latest_metadata(instance, dg.AssetKey(["tiny", "augmented_dataset"]), "Metaplastic")
        assert (metadata["profile"], metadata["profile_source"], metadata["num_images"]) == ("demo", "run tag", 120)
        run = instance.get_run_by_id(
            instance.get_latest_materialization_event(dg.AssetKey(["tiny", "raw_images"])).run_id
        )
        assert "dagster/backfill" in run.tags  # the same machinery as the UI's "Materialize all"
    # The service started for the call stops once idle: no client, and no run in progress (automation may
    # still have reacted to the broken files).
    wait_for(lambda: service_stopped(home), 120, "the service started for the call to stop once idle")
    with dg.DagsterInstance.get() as instance:
        assert not in_progress_runs(instance)


def test_bad_selection_and_missing_folder_are_clear_errors(home, tiny_dataset, tmp_path, capsys):
    assert main(["materialize", "--dataset", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["materialize", "--dataset", str(tiny_dataset), "--select", "key:nothing_like_this"]) == 2
    assert "matches no asset" in capsys.readouterr().err


def test_unknown_dataset_name_is_refused(home, capsys):
    assert main(["materialize", "--name", "ghost"]) == 2
    assert "no dataset named 'ghost'" in capsys.readouterr().err


def test_rename_and_remove_need_force_once_materialized(home, tiny_dataset, capsys):
    assert main(["datasets", "add", "tiny", str(tiny_dataset)]) == 0
    assert main(["datasets", "rename", "tiny", "small"]) == 0  # nothing materialized yet
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(["small", "raw_images"], partition=None))
    assert main(["datasets", "rename", "small", "other"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["datasets", "remove", "small"]) == 2
    assert main(["datasets", "remove", "small", "--force"]) == 0
    assert [e.name for e in load_registry(registry_path())] == ["demo"]
    assert any(tiny_dataset.rglob("*.png"))  # the images are untouched
    with dg.DagsterInstance.get() as instance:
        assert instance.get_asset_keys(prefix=["small"])  # history kept


def start_cli(select: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "bio_assets.app.cli", "materialize", "--name", "tiny", "--select", select]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def search_step_running() -> bool:
    with dg.DagsterInstance.get() as instance:
        for run in in_progress_runs(instance):
            starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
            if any(e.step_key == "tiny__searched_cell" for e in starts):
                return True
    return False


def search_step_running_in(cli: subprocess.Popen):
    """A wait_for predicate that fails at once, with the CLI's output, if the CLI has exited."""

    def predicate() -> bool:
        if cli.poll() is not None:
            raise AssertionError(f"the CLI exited with {cli.returncode} before the search step:\n{cli.stdout.read()}")
        return search_step_running()

    return predicate


def nothing_in_flight() -> bool:
    with dg.DagsterInstance.get() as instance:
        return not in_progress_runs(instance)


@pytest.mark.e2e
@pytest.mark.slow(seconds=220)
def test_sigterm_cancels_promptly_and_a_killed_cli_leaves_nothing_running(service_home):
    registry = Path(os.environ["BIO_ASSETS_REGISTRY"])
    (entry,) = load_registry(registry)
    slow_search = {**entry.settings, "searched_cell": {**TINY_SEARCH, "epochs": 40, "cycles": 2}}
    save_registry(registry, [replace(entry, settings=slow_search)])
    selection = '+key:"tiny/searched_cell"'

    cli = start_cli(selection)
    wait_for(search_step_running_in(cli), 600, "the search step")
    cli.send_signal(signal.SIGTERM)
    signaled = time.monotonic()
    output, _ = cli.communicate(timeout=90)
    assert cli.returncode == 128 + signal.SIGTERM, output
    assert time.monotonic() - signaled < 60 and "canceling the backfill" in output
    wait_for(nothing_in_flight, 30, "every run to end")
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.CANCELED]))
        assert runs  # the interrupted run is marked canceled, not left STARTED
    wait_for(lambda: service_stopped(service_home), 60, "the service to stop once idle")

    cell_only = 'key:"tiny/searched_cell"'  # the data group is materialized by now: no need to redo it
    cli = start_cli(cell_only)
    wait_for(search_step_running_in(cli), 600, "the search step again")
    cli.kill()  # SIGKILL: its lease ends with it, and the service cancels what it launched
    cli.wait(timeout=30)
    wait_for(nothing_in_flight, 90, "every run to end after the kill")

    save_registry(registry, [entry])  # the rerun only has to complete: back at the tiny search
    assert subprocess.run(
        [sys.executable, "-m", "bio_assets.app.cli", "materialize", "--name", "tiny", "--select", cell_only],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    ).returncode == 0  # fmt: skip
    with dg.DagsterInstance.get() as instance:
        assert instance.get_latest_materialization_event(CELL) is not None
        assert not in_progress_runs(instance)
