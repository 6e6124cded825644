"""The Dagster service of an instance: ``dagster dev`` (webserver, daemon, code server) in its own
process group, started after cleaning up what an earlier crash left, and stopped within seconds.

``bio-assets ui`` runs it in the foreground. ``bio-assets materialize`` starts it as a child
process that dies with the CLI (Linux parent-death signal), so a killed CLI never leaves a
daemon or a run behind. Stopping cancels in-progress backfills, asks every in-progress run to
terminate, waits ``grace`` seconds, then kills the process group and marks what is left
canceled, freeing its pool slots. Searches and trainings keep what they saved.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg

from bio_assets.app.processes import alive, kill_processes, run_processes
from bio_assets.app.webserver import DagsterWebserver, WebserverError
from bio_assets.core.io.atomic import atomic_write

STATE_FILE = "bio-assets-service.json"
IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
REQUESTED_BACKFILLS = """
query { partitionBackfillsOrError(status: REQUESTED) { ... on PartitionBackfills { results { id } } } }
"""
# A daemon heartbeat younger than this means another daemon serves the instance.
HEARTBEAT_FRESH_SECONDS = 90
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServiceState:
    """What a running service writes into ``$DAGSTER_HOME/bio-assets-service.json``."""

    url: str
    supervisor_pid: int
    group: int
    started: float

    def supervisor_alive(self) -> bool:
        return alive(self.supervisor_pid, self.started)


def state_path(home: Path) -> Path:
    return Path(home) / STATE_FILE


def read_state(home: Path) -> ServiceState | None:
    try:
        return ServiceState(**json.loads(state_path(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def live_service(home: Path) -> ServiceState | None:
    """The running service of this instance whose webserver answers, if any."""
    state = read_state(home)
    if state and state.supervisor_alive() and DagsterWebserver(state.url, timeout=5).ready():
        return state
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def die_with_parent() -> None:
    """``preexec_fn``: the child receives SIGTERM when the process that started it dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: a killed parent leaves the service running; the next start cleans up


def in_progress_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS)))


def release_run(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str, *, failed: bool) -> None:
    """Kill what is left of ``run``'s processes, mark it failed or canceled, free its pool slots."""
    kill_processes(run_processes(instance, run).live_pids())
    if failed:
        instance.report_run_failed(run, message)
    else:
        instance.report_run_canceled(run, message)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail every in-progress run whose worker process is gone; what was done, as messages."""
    done = []
    for run in in_progress_runs(instance):
        processes = run_processes(instance, run)
        if processes.worker_alive() is False:
            release_run(instance, run, f"run worker pid {processes.worker[0]} is gone (found at start)", failed=True)
            done.append(f"run {run.run_id[:8]}: worker gone, marked failed, pool slots freed")
    return done


def stop_previous_service(home: Path) -> list[str]:
    """Kill the process group of a service whose supervisor died (its daemon may still run)."""
    state = read_state(home)
    if state is None or state.supervisor_alive():
        return []
    try:
        os.killpg(state.group, signal.SIGKILL)
        note = [f"stopped the processes of a service whose supervisor (pid {state.supervisor_pid}) died"]
    except (ProcessLookupError, PermissionError):
        note = []
    state_path(home).unlink(missing_ok=True)
    return note


def other_daemon_running(instance: dg.DagsterInstance) -> bool:
    heartbeats = instance.get_daemon_heartbeats()
    now = time.time()
    return any(now - beat.timestamp < HEARTBEAT_FRESH_SECONDS for beat in heartbeats.values())


def _say(message: str) -> None:
    print(message, flush=True)


class Service:
    """``dagster dev`` for the instance at ``home``, serving ``workspace``, on 127.0.0.1:``port``."""

    def __init__(self, home: Path, workspace: Path, *, port: int = 0, log_path: Path | None = None) -> None:
        self.home = Path(home)
        self.workspace = Path(workspace)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or self.home / "service.log"
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 300.0, say=_say) -> str:
        if live_service(self.home):
            raise ValueError(f"a bio-assets service already serves {self.home} at {read_state(self.home).url}")
        stopped = stop_previous_service(self.home)
        for note in stopped:
            say(note)
        with dg.DagsterInstance.get() as instance:
            if stopped:
                instance.wipe_daemon_heartbeats()  # they were the killed service's daemon's
            if other_daemon_running(instance):
                raise ValueError(
                    f"a Dagster daemon started outside bio-assets serves {self.home}; launch from its UI or stop it"
                )
            for note in reap_dead_runs(instance):
                say(note)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "bio_assets.app.dev_server", "--host", "127.0.0.1",
            "--port", str(self.port), "--workspace", str(self.workspace),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workspace.parent
            )
        state = ServiceState(self.url, os.getpid(), self.process.pid, time.time())
        atomic_write(state_path(self.home), lambda handle: handle.write(json.dumps(asdict(state)).encode()))
        web = DagsterWebserver(self.url, timeout=10)
        deadline = time.monotonic() + timeout
        while not web.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with code {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dagster dev did not answer within {timeout:.0f} s; see {self.log_path}")
            time.sleep(1.0)
        return self.url

    def stop(self, *, grace: float = 10.0, say=_say) -> None:
        """Cancel backfills, terminate runs, then stop every process of the service."""
        if self.process is None:
            return
        web = DagsterWebserver(self.url, timeout=10)
        with dg.DagsterInstance.get() as instance:
            runs = in_progress_runs(instance)
            try:
                data = web.query(REQUESTED_BACKFILLS)["partitionBackfillsOrError"]
                for backfill in data.get("results", []):
                    web.cancel_backfill(backfill["id"])
                web.terminate_runs([r.run_id for r in runs])
            except (OSError, WebserverError) as err:
                say(f"could not ask the webserver to stop runs ({err}); stopping them directly")
            deadline = time.monotonic() + grace
            while in_progress_runs(instance) and time.monotonic() < deadline:
                time.sleep(0.5)
            self._stop_group()
            # Our daemon is gone: its last heartbeats must not read as another daemon's at the next start.
            instance.wipe_daemon_heartbeats()
            for run in in_progress_runs(instance):
                release_run(instance, run, "canceled: the bio-assets service stopped", failed=False)
                say(f"run {run.run_id[:8]} marked canceled")
        state_path(self.home).unlink(missing_ok=True)

    def _stop_group(self) -> None:
        assert self.process is not None
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader exited; its group may still hold children.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        self.process = None


def serve_until_signal(home: Path, workspace: Path, *, port: int, say=None) -> int:
    """``bio-assets ui``: run the service until Ctrl-C or SIGTERM, then stop it cleanly."""
    say = say or _say
    service = Service(home, workspace, port=port)
    stopping = []

    def request_stop(signum, _frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    url = service.start(say=say)
    say(f"Dagster UI at {url} (instance {home}); Ctrl-C stops it")
    while not stopping and service.process is not None and service.process.poll() is None:
        time.sleep(0.5)
    say("stopping: canceling backfills and runs in progress")
    service.stop(say=say)
    return 0 if stopping else 1
