"""The service of an instance is found by its lock and proven by its token: a stale state file kills
nothing that is not still the process it names, a foreign server on the port is neither used nor sent
a request, leases of dead clients end, and a dead client's backfills are canceled, no one else's."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from bio_assets.app.errors import ServiceError
from bio_assets.app.processes import ProcessIdentity, command_line
from bio_assets.app.service import (
    CLIENT_TAG,
    ClientLease,
    DataPaths,
    ServiceFiles,
    ServiceState,
    Supervisor,
    cancel_orphaned,
    live_clients,
    running_service,
    service_client,
    stop_leftovers,
    write_state,
)
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]


class StandIn(http.server.ThreadingHTTPServer):
    """Another program on the port: answers every GraphQL POST as a Dagster webserver would, and
    records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
                body = json.dumps({"data": {"version": "1.13.27", "workspaceOrError": {"locationEntries": []}}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.shutdown()
    server.server_close()


def started_sleeper() -> tuple[subprocess.Popen, ProcessIdentity]:
    """``setsid sleep 60`` (a process group of its own) and its identity once ``sleep`` runs."""
    process = subprocess.Popen(["setsid", "sleep", "60"])
    wait_for(lambda: (command_line(process.pid) or ("",))[0] == "sleep", 10, "the exec of sleep", every=0.05)
    return process, ProcessIdentity.of(process.pid)


def holding_lock(path: Path) -> subprocess.Popen:
    """Another process that holds ``path``'s lock, as a live supervisor does."""
    script = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(120)"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def state_naming(url: str, supervisor: ProcessIdentity, group: int, processes: tuple) -> ServiceState:
    paths = DataPaths(Path("/nonexistent/datasets.yaml"), Path("/nonexistent/data"))
    return ServiceState(url, "the-token", supervisor, group, processes, paths, ready=True)


def test_a_stale_state_file_kills_only_a_process_that_is_still_the_one_it_names(home):
    files = ServiceFiles.of(home)
    sleeper, identity = started_sleeper()
    try:
        # The recorded process started at another time: the pid (and its group) now belong to a stranger.
        stranger = state_naming("http://127.0.0.1:9", identity, sleeper.pid, (replace(identity, started=1.0),))
        write_state(files, stranger)
        assert stop_leftovers(files) == [] and not files.state.exists()
        time.sleep(0.2)
        assert sleeper.poll() is None
        # Recorded as it runs: it is what the dead supervisor started, and it is stopped.
        write_state(files, replace(stranger, processes=(identity,)))
        assert stop_leftovers(files) and sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_a_taken_port_is_a_clear_error_and_the_server_on_it_gets_nothing(home, stand_in):
    port = int(stand_in.url.rsplit(":", 1)[1])
    supervisor = Supervisor(home, port=port, paths=DataPaths.current(), idle=None, project=ROOT, say=lambda _m: None)
    with pytest.raises(ServiceError, match=rf"port {port} is taken by pid {os.getpid()} of user \w+"):
        supervisor.serve()
    assert stand_in.requests == []
    assert not ServiceFiles.of(home).state.exists()


def test_a_server_that_does_not_prove_the_token_is_not_used(home, stand_in):
    files = ServiceFiles.of(home)
    holder = holding_lock(files.lock)
    try:
        supervisor = ProcessIdentity.of(holder.pid)
        write_state(files, state_naming(stand_in.url, supervisor, holder.pid, (supervisor,)))
        assert running_service(files) is None
        with pytest.raises(ServiceError, match="holds its lock but does not answer"):
            with service_client(home, paths=DataPaths.current(), say=lambda _m: None):
                pass
        assert stand_in.requests and not any("mutation" in request for request in stand_in.requests)
        assert live_clients(files) == set()  # the refused client's lease is gone
    finally:
        holder.kill()
        holder.wait()


def test_leases_of_dead_clients_end(home):
    files = ServiceFiles.of(home)
    mine = ClientLease(files)
    dead = holding_lock(files.clients / "12345-deadbeef.lock")
    assert live_clients(files) == {mine.client_id, "12345-deadbeef"}
    dead.kill()
    dead.wait()
    assert live_clients(files) == {mine.client_id}
    assert not (files.clients / "12345-deadbeef.lock").exists()
    mine.release()
    assert live_clients(files) == set()


class FakeWebserver:
    def __init__(self, backfills: list[dict]) -> None:
        self.backfills, self.canceled, self.terminated = backfills, [], []

    def query(self, text: str, variables=None) -> dict:
        assert "partitionBackfillsOrError" in text
        return {"partitionBackfillsOrError": {"results": self.backfills}}

    def cancel_backfill(self, backfill_id: str) -> None:
        self.canceled.append(backfill_id)

    def terminate_runs(self, run_ids) -> None:
        self.terminated += list(run_ids)


def test_only_the_work_of_clients_that_are_gone_is_canceled():
    def backfill(backfill_id: str, client: str | None) -> dict:
        return {"id": backfill_id, "tags": [{"key": CLIENT_TAG, "value": client}] if client else []}

    web = FakeWebserver([backfill("mine", "live-1"), backfill("orphan", "gone-2"), backfill("from-ui", None)])
    with dg.instance_for_test() as instance:
        for run_id, client in (("run-live", "live-1"), ("run-orphan", "gone-2"), ("run-ui", None)):
            tags = {CLIENT_TAG: client} if client else {}
            instance.add_run(dg.DagsterRun(job_name="j", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags))
        assert cancel_orphaned(instance, web, {"live-1"}, say=lambda _m: None) == ["orphan"]
    assert web.canceled == ["orphan"] and web.terminated == ["run-orphan"]


def test_registry_and_data_home_default_beside_the_instance_whatever_the_current_folder(tmp_path, monkeypatch):
    from resources.paths import data_home, registry_path

    monkeypatch.delenv("BIO_ASSETS_HOME")
    monkeypatch.delenv("BIO_ASSETS_REGISTRY")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "project" / ".dagster_home"))
    for folder in (tmp_path, ROOT):
        monkeypatch.chdir(folder)
        assert registry_path() == tmp_path / "project" / "datasets.yaml"
        assert data_home() == tmp_path / "project" / ".bio_assets"
    monkeypatch.setenv("BIO_ASSETS_REGISTRY", "relative.yaml")  # an explicit value is taken as given
    assert registry_path() == ROOT / "relative.yaml"


def test_another_users_instance_is_a_clear_error(tmp_path, monkeypatch):
    """Root may write every folder, so the refusal is shown with the permission check answering as it
    does for an unprivileged user (checked by hand as one: `bio-assets materialize` on root's instance)."""
    from bio_assets.app.driver import dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert dagster_home() == tmp_path
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(ValueError, match=rf"the Dagster instance {tmp_path} belongs to user \w+ and you may not"):
        dagster_home()
