"""The bio-assets service of an instance: Dagster's code server, webserver and daemon as three
processes, as a deployment runs them, owned by one supervisor and shared by every client.

One service per ``DAGSTER_HOME``. The supervisor holds ``<home>/bio-assets-service/service.lock``
for its whole life (``flock``: a killed supervisor releases it) and writes ``service.json``: the URL,
a random token, and each process it started with its start time and command line. The webserver
proves the token: the generated workspace file gives the code location the token as display
metadata, which GraphQL returns. A port that answers without the token is someone else's, and
nothing is sent to it.

Clients (``bio-assets materialize``, ``bio-assets ui``) hold a lease, a locked file under
``clients/``, for as long as they use the service, and tag what they launch with their lease id.
A client starts a service only when none runs (one at a time, under ``starting.lock``); the service
it starts is detached and stops after ``idle`` seconds without a lease and without a run in
progress. Backfills and runs of a client whose lease is gone (a killed CLI) are canceled; the work
of the others goes on. ``bio-assets ui`` serves in the foreground: Ctrl-C stops it once no other
client uses it (twice: at once).

Stopping cancels in-progress backfills, asks every in-progress run to terminate, waits ``grace``
seconds, then kills the processes it started and marks what is left canceled, freeing pool slots.
A signal goes only to a process whose pid, start time and command line are those recorded.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from bio_assets.app.errors import ServiceError
from bio_assets.app.processes import ProcessIdentity, kill_processes, port_holder, run_processes
from bio_assets.app.webserver import DagsterWebserver, WebserverError
from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.locks import acquire, file_lock, try_acquire

SERVICE_FOLDER = "bio-assets-service"
TOKEN_KEY = "bio_assets_service"
LOCATION_NAME = "bio_assets"
CODE_MODULE = "bio_assets.definitions"
CLIENT_TAG = "bio_assets/client"
IDLE_ENV = "BIO_ASSETS_SERVICE_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 60.0
START_TIMEOUT_SECONDS = 300.0
# How often the supervisor looks at its processes, its clients and orphaned work (a GraphQL query and a
# run query each time): quick enough for Ctrl-C and killed clients, cheap beside the trainings.
WATCH_SECONDS = 2.0
IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
REQUESTED_BACKFILLS = """
query { partitionBackfillsOrError(status: REQUESTED) {
  ... on PartitionBackfills { results { id tags { key value } } } } }
"""
LOCATION_ENTRIES = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name versionKey loadStatus displayMetadata { key value } locationOrLoadError { __typename } } } } }
"""
RELOAD_LOCATION = """
mutation Reload($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
  __typename ... on WorkspaceLocationEntry { versionKey loadStatus } ... on PythonError { message } } }
"""
# A daemon heartbeat younger than this means another daemon serves the instance.
HEARTBEAT_FRESH_SECONDS = 90
_PR_SET_PDEATHSIG = 1


def _say(message: str) -> None:
    print(message, flush=True)


def die_with_parent() -> None:
    """``preexec_fn``: the child receives SIGTERM when the process that started it dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: a killed supervisor leaves its processes; the next start stops them


@dataclass(frozen=True)
class DataPaths:
    """The registry and data home every process of a service reads, absolute, so that a client in
    any folder and the service agree."""

    registry: Path
    data_home: Path

    def environment(self) -> dict[str, str]:
        from resources.paths import HOME_ENV, REGISTRY_ENV

        return {REGISTRY_ENV: str(self.registry), HOME_ENV: str(self.data_home)}

    @classmethod
    def current(cls) -> DataPaths:
        from resources.paths import data_home, registry_path

        return cls(registry_path(), data_home())


@dataclass(frozen=True)
class ServiceFiles:
    """The files of the service of the instance at ``home``."""

    folder: Path

    @classmethod
    def of(cls, home: Path) -> ServiceFiles:
        folder = Path(home).absolute() / SERVICE_FOLDER
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        (folder / "clients").mkdir(mode=0o700, exist_ok=True)
        return cls(folder)

    lock = property(lambda self: self.folder / "service.lock")
    starting = property(lambda self: self.folder / "starting.lock")
    state = property(lambda self: self.folder / "service.json")
    workspace = property(lambda self: self.folder / "workspace.yaml")
    clients = property(lambda self: self.folder / "clients")
    daemon_view = property(lambda self: self.folder / "daemon-workspace.json")
    log = property(lambda self: self.folder / "service.log")


@dataclass(frozen=True)
class ServiceState:
    """What a running supervisor records in ``service.json`` (0600: the token is in it)."""

    url: str
    token: str
    supervisor: ProcessIdentity
    group: int
    processes: tuple[ProcessIdentity, ...]
    paths: DataPaths
    ready: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "url": self.url,
                "token": self.token,
                "supervisor": self.supervisor.as_json(),
                "group": self.group,
                "processes": [p.as_json() for p in self.processes],
                "registry": str(self.paths.registry),
                "data_home": str(self.paths.data_home),
                "ready": self.ready,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ServiceState:
        data = json.loads(text)
        return cls(
            data["url"],
            data["token"],
            ProcessIdentity.from_json(data["supervisor"]),
            int(data["group"]),
            tuple(ProcessIdentity.from_json(p) for p in data["processes"]),
            DataPaths(Path(data["registry"]), Path(data["data_home"])),
            bool(data["ready"]),
        )


def read_state(files: ServiceFiles) -> ServiceState | None:
    try:
        return ServiceState.from_json(files.state.read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_state(files: ServiceFiles, state: ServiceState) -> None:
    atomic_write(files.state, lambda handle: handle.write(state.to_json().encode()))


def lock_held(path: Path) -> bool:
    """Whether a live process holds the lock of ``path`` (taking it for an instant when free)."""
    if not path.exists():
        return False
    fd = try_acquire(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def location_entries(web: DagsterWebserver) -> list[dict]:
    return web.query(LOCATION_ENTRIES)["workspaceOrError"].get("locationEntries", [])


def loaded_locations(url: str, *, timeout: float = 5.0) -> list[dict]:
    """The code locations the webserver at ``url`` has loaded without error; none when it does not answer."""
    try:
        entries = location_entries(DagsterWebserver(url, timeout=timeout))
    except (OSError, WebserverError, ValueError, KeyError, TypeError):
        return []
    return [
        entry
        for entry in entries
        if entry["loadStatus"] == "LOADED"
        and (entry["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
    ]


def proves_token(url: str, token: str, *, timeout: float = 5.0) -> bool:
    """Whether the server at ``url`` serves the code location that carries ``token``, loaded."""
    token_entry = {"key": TOKEN_KEY, "value": token}
    return any(token_entry in entry["displayMetadata"] for entry in loaded_locations(url, timeout=timeout))


def running_service(files: ServiceFiles) -> ServiceState | None:
    """The service of this instance when its supervisor lives and its webserver proves the token."""
    if not lock_held(files.lock):
        return None
    state = read_state(files)
    if state is None or not state.ready or not state.supervisor.still_running():
        return None
    return state if proves_token(state.url, state.token) else None


def live_clients(files: ServiceFiles) -> set[str]:
    """Lease ids of the clients that still hold their lease; a dead client's file is removed."""
    live = set()
    for path in files.clients.glob("*.lock"):
        fd = try_acquire(path)
        if fd is None:
            live.add(path.stem)
            continue
        path.unlink(missing_ok=True)
        os.close(fd)
    return live


@dataclass
class ClientLease:
    """A client's claim on the service, held (``flock``) until ``release`` or the client's death."""

    files: ServiceFiles
    client_id: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
    _fd: int | None = None

    def __post_init__(self) -> None:
        self._fd = acquire(self.files.clients / f"{self.client_id}.lock", timeout=5, what="client lease")

    def release(self) -> None:
        if self._fd is not None:
            (self.files.clients / f"{self.client_id}.lock").unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


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


def other_daemon_running(instance: dg.DagsterInstance) -> bool:
    heartbeats = instance.get_daemon_heartbeats()
    now = time.time()
    return any(now - beat.timestamp < HEARTBEAT_FRESH_SECONDS for beat in heartbeats.values())


def signal_group_if_ours(group: int, members: tuple[ProcessIdentity, ...], sig: int) -> bool:
    """Signal process group ``group`` only while one of ``members`` (recorded at start) still runs in
    it: a group id is not reused while the group has a member, so the group is still ours."""
    for member in members:
        if member.still_running():
            try:
                if os.getpgid(member.pid) != group:
                    continue
                os.killpg(group, sig)
                return True
            except (ProcessLookupError, PermissionError):
                continue
    return False


def stop_leftovers(files: ServiceFiles) -> list[str]:
    """The processes a dead supervisor left (its state file is there, its lock is free): killed only
    where start time and command line show they are the ones it started."""
    state = read_state(files)
    if state is None:
        return []
    killed = signal_group_if_ours(state.group, state.processes, signal.SIGKILL)
    files.state.unlink(missing_ok=True)
    if killed:
        return [f"stopped the processes of a service whose supervisor (pid {state.supervisor.pid}) died"]
    return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def workspace_yaml(socket_path: Path, token: str) -> str:
    return json.dumps(  # JSON is YAML
        {
            "load_from": [
                {
                    "grpc_server": {
                        "host": "localhost",
                        "socket": str(socket_path),
                        "location_name": LOCATION_NAME,
                        "additional_metadata": {TOKEN_KEY: token},
                    }
                }
            ]
        },
        indent=1,
    )


class Supervisor:
    """Starts and watches the three processes of the instance at ``home``'s service.

    ``port`` 0 picks a free port; ``idle`` (seconds) stops the service once no client holds a lease
    and no run is in progress for that long (``None``: until a signal, as ``bio-assets ui``)."""

    def __init__(
        self,
        home: Path,
        *,
        port: int,
        paths: DataPaths,
        idle: float | None,
        project: Path,
        say: Callable[[str], None] = _say,
    ) -> None:
        self.home, self.files = Path(home).absolute(), ServiceFiles.of(home)
        self.port, self.paths, self.idle, self.project, self.say = port, paths, idle, project, say
        self.token = secrets.token_urlsafe(24)
        self.processes: list[subprocess.Popen] = []
        self.identities: tuple[ProcessIdentity, ...] = ()
        self.url = ""
        self._socket_folder: Path | None = None
        self._stop_requests: list[int] = []
        self._closed_to_clients: int | None = None

    # -- starting -------------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        from bio_assets.app.daemon import DAEMON_VIEW_ENV

        return {**os.environ, **self.paths.environment(), DAEMON_VIEW_ENV: str(self.files.daemon_view)}

    def _spawn(self, command: list[str], log, *, group: int | None) -> subprocess.Popen:
        # One process group of their own (not the terminal's, so Ctrl-C reaches only the supervisor), in
        # this session: a group of another session could not be joined.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=self.project, env=self._environment(),
            preexec_fn=die_with_parent, process_group=0 if group is None else group,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def _start_processes(self) -> None:
        self._socket_folder = Path(tempfile.mkdtemp(prefix="bio-assets-code-"))  # 0700, short path (< 108)
        code_socket = self._socket_folder / "code.sock"
        atomic_write(self.files.workspace, lambda h: h.write(workspace_yaml(code_socket, self.token).encode()))
        python = sys.executable
        port = self.port
        if port:
            holder = port_holder(port)
            if holder:
                raise ServiceError(f"port {port} is taken by {holder}; choose another with --port (0: any free port)")
        else:
            port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.files.log, "ab") as log:
            code = self._spawn(
                [python, "-m", "dagster", "code-server", "start", "-s", str(code_socket), "-m", CODE_MODULE,
                 "--location-name", LOCATION_NAME], log, group=None,
            )  # fmt: skip
            self._spawn(
                [python, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
                 "-w", str(self.files.workspace)], log, group=code.pid,
            )  # fmt: skip
            self._spawn(
                [python, "-m", "bio_assets.app.daemon", "run", "-w", str(self.files.workspace)], log, group=code.pid
            )
        # Popen returns once the child has exec'd, so each command line is the process's own.
        self.identities = tuple(i for i in (ProcessIdentity.of(p.pid) for p in self.processes) if i is not None)

    def _state(self, *, ready: bool) -> ServiceState:
        supervisor = ProcessIdentity.of(os.getpid())
        assert supervisor is not None
        return ServiceState(self.url, self.token, supervisor, self.processes[0].pid, self.identities, self.paths, ready)

    def _exited(self) -> subprocess.Popen | None:
        return next((p for p in self.processes if p.poll() is not None), None)

    def _name(self, process: subprocess.Popen) -> str:
        return ("the code server", "the webserver", "the daemon")[self.processes.index(process)]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not proves_token(self.url, self.token):
            exited = self._exited()
            if exited is not None:
                holder = port_holder(int(self.url.rsplit(":", 1)[1]))
                taken = f"; the port is now taken by {holder}" if holder and exited is self.processes[1] else ""
                raise ServiceError(
                    f"{self._name(exited)} exited with code {exited.returncode}{taken}; see {self.files.log}"
                )
            if self._stop_requests:
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                raise ServiceError(f"the service did not answer within {timeout:.0f} s; see {self.files.log}")
            time.sleep(0.5)

    def _prepare_instance(self, stopped: list[str]) -> None:
        with dg.DagsterInstance.get() as instance:
            if stopped:
                instance.wipe_daemon_heartbeats()  # they were the killed service's daemon's
            if other_daemon_running(instance):
                raise ServiceError(
                    f"a Dagster daemon started outside bio-assets serves {self.home}; launch from its UI or stop it"
                )
            for note in reap_dead_runs(instance):
                self.say(note)

    # -- serving --------------------------------------------------------------------------------
    def serve(self, *, on_ready: Callable[[str], None] | None = None, grace: float = 10.0) -> int:
        """Run the service until a signal (or idleness); 0 after a requested stop, 1 when a process died."""
        try:
            lock = acquire(self.files.lock, timeout=5, what="service lock")
        except TimeoutError:
            state = read_state(self.files)
            where = f" at {state.url}" if state else ""
            raise ServiceError(f"a bio-assets service already serves {self.home}{where}") from None
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._prepare_instance(stop_leftovers(self.files))
            self._start_processes()
            write_state(self.files, self._state(ready=False))
            self._wait_ready(START_TIMEOUT_SECONDS)
            write_state(self.files, self._state(ready=True))
            if on_ready:
                on_ready(self.url)
            return self._watch()
        except KeyboardInterrupt:
            return 128 + (self._stop_requests[0] if self._stop_requests else signal.SIGINT)
        finally:
            self._stop(grace)
            self.files.state.unlink(missing_ok=True)
            if self._socket_folder is not None:
                shutil.rmtree(self._socket_folder, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(lock)
            if self._closed_to_clients is not None:
                os.close(self._closed_to_clients)

    def _close_to_clients(self) -> bool:
        """Take ``starting.lock`` for good when still no client holds a lease: a client checks for a
        running service under that lock, so none can find this one while it stops (it starts its own)."""
        fd = try_acquire(self.files.starting)
        if fd is None:
            return False  # a client is looking for the service right now
        if live_clients(self.files):
            os.close(fd)
            return False
        self._closed_to_clients = fd
        return True

    def _request_stop(self, signum, _frame) -> None:
        self._stop_requests.append(signum)

    def _watch(self) -> int:
        web = DagsterWebserver(self.url, timeout=10)
        idle_since, told = time.monotonic(), False
        with dg.DagsterInstance.get() as instance:
            while True:
                exited = self._exited()
                if exited is not None:
                    self.say(f"{self._name(exited)} exited with code {exited.returncode}; stopping the service")
                    return 1
                clients = live_clients(self.files)
                if self._stop_requests:
                    if len(self._stop_requests) > 1 or not clients:
                        return 0
                    if not told:
                        self.say(f"{len(clients)} client(s) still use this service; it stops when they end "
                                 "(Ctrl-C again: now)")  # fmt: skip
                        told = True
                try:
                    cancel_orphaned(instance, web, clients, say=self.say)
                except (OSError, WebserverError) as err:
                    self.say(f"could not check for orphaned backfills: {err}")
                if clients or in_progress_runs(instance):
                    idle_since = time.monotonic()
                elif self.idle is not None and time.monotonic() - idle_since > self.idle and self._close_to_clients():
                    self.say(f"no client for {self.idle:.0f} s: stopping the service")
                    return 0
                time.sleep(WATCH_SECONDS)

    # -- stopping -------------------------------------------------------------------------------
    def _stop(self, grace: float) -> None:
        """Cancel backfills, terminate runs, then stop every process of the service."""
        if not self.processes:
            return
        web = DagsterWebserver(self.url, timeout=10)
        with dg.DagsterInstance.get() as instance:
            runs = in_progress_runs(instance)
            if self.url and proves_token(self.url, self.token):
                try:
                    for backfill in requested_backfills(web):
                        web.cancel_backfill(backfill["id"])
                    web.terminate_runs([r.run_id for r in runs])
                except (OSError, WebserverError) as err:
                    self.say(f"could not ask the webserver to stop runs ({err}); stopping them directly")
                deadline = time.monotonic() + grace
                while in_progress_runs(instance) and time.monotonic() < deadline:
                    time.sleep(0.5)
            self._stop_processes()
            # Our daemon is gone: its last heartbeats must not read as another daemon's at the next start.
            instance.wipe_daemon_heartbeats()
            for run in in_progress_runs(instance):
                release_run(instance, run, "canceled: the bio-assets service stopped", failed=False)
                self.say(f"run {run.run_id[:8]} marked canceled")

    def _stop_processes(self) -> None:
        group = self.processes[0].pid
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            # The whole group, so that what the processes started (run workers) goes with them.
            if not signal_group_if_ours(group, self.identities, sig):
                for process in self.processes:
                    process.send_signal(sig)  # nothing once reaped
            deadline = time.monotonic() + wait
            while any(p.poll() is None for p in self.processes) and time.monotonic() < deadline:
                time.sleep(0.1)
            if all(p.poll() is not None for p in self.processes):
                break
        self.processes = []


def requested_backfills(web: DagsterWebserver) -> list[dict]:
    return web.query(REQUESTED_BACKFILLS)["partitionBackfillsOrError"].get("results", [])


def cancel_orphaned(
    instance: dg.DagsterInstance, web: DagsterWebserver, clients: set[str], *, say: Callable[[str], None]
) -> list[str]:
    """Cancel the backfills (and terminate the runs) of clients whose lease is gone."""
    canceled = []
    for backfill in requested_backfills(web):
        tags = {t["key"]: t["value"] for t in backfill["tags"]}
        owner = tags.get(CLIENT_TAG)
        if owner is None or owner in clients:
            continue
        web.cancel_backfill(backfill["id"])
        say(f"backfill {backfill['id']}: its client {owner} is gone; canceled")
        canceled.append(backfill["id"])
    orphans = [r.run_id for r in in_progress_runs(instance) if r.tags.get(CLIENT_TAG) not in (None, *clients)]
    if orphans:
        web.terminate_runs(orphans)
    return canceled


@dataclass(frozen=True)
class ServiceConnection:
    """A client's view of the service it uses: where it is and the lease id to tag launches with."""

    url: str
    client_id: str
    state: ServiceState

    @property
    def tags(self) -> dict[str, str]:
        return {CLIENT_TAG: self.client_id}


def idle_seconds() -> float:
    raw = os.environ.get(IDLE_ENV, str(DEFAULT_IDLE_SECONDS))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{IDLE_ENV}={raw!r} is not a number of seconds") from None


def _start_detached(files: ServiceFiles, paths: DataPaths, port: int, say: Callable[[str], None]) -> ServiceState:
    """Start a service that outlives this client (it stops when idle) and wait until it proves its token."""
    command = [
        sys.executable, "-m", "bio_assets.app.cli", "service", "--port", str(port), "--idle", str(idle_seconds()),
    ]  # fmt: skip
    with open(files.log, "ab") as log:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **paths.environment()},
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        state = running_service(files)
        if state is not None and state.supervisor.pid == child.pid:
            say(f"started the bio-assets service at {state.url} (code server, webserver, daemon)")
            return state
        if child.poll() is not None:
            raise ServiceError(f"the bio-assets service exited with code {child.returncode}; see {files.log}")
        if time.monotonic() > deadline:
            raise ServiceError(
                f"the bio-assets service did not start within {START_TIMEOUT_SECONDS:.0f} s; see {files.log}"
            )
        time.sleep(0.5)


@contextmanager
def service_client(
    home: Path, *, paths: DataPaths, port: int = 0, say: Callable[[str], None] = _say
) -> Iterator[ServiceConnection]:
    """Use the instance's service for the ``with`` block, starting one when none runs. The service
    outlives the block when another client uses it."""
    files = ServiceFiles.of(home)
    lease = ClientLease(files)
    try:
        with file_lock(files.starting, timeout=START_TIMEOUT_SECONDS + 30, what="service start"):
            state = running_service(files)
            if state is None:
                if lock_held(files.lock):
                    raise ServiceError(f"the bio-assets service of {home} holds its lock but does not answer; "
                                       f"see {files.log}")  # fmt: skip
                state = _start_detached(files, paths, port, say)
            else:
                say(f"using the bio-assets service at {state.url}")
        if state.paths != paths:
            raise ServiceError(
                f"the service of {home} reads registry {state.paths.registry} and data home {state.paths.data_home}; "
                f"this command uses {paths.registry} and {paths.data_home} (set BIO_ASSETS_REGISTRY and "
                "BIO_ASSETS_HOME alike, or leave both unset)"
            )
        yield ServiceConnection(state.url, lease.client_id, state)
    finally:
        lease.release()


def reload_code_location(connection: ServiceConnection, files: ServiceFiles, *, timeout: float = 120.0) -> None:
    """Reload the code location (after a registry change) and wait until the daemon serves it too."""
    web = DagsterWebserver(connection.url, timeout=timeout)
    result = web.query(RELOAD_LOCATION, {"name": LOCATION_NAME})["reloadRepositoryLocation"]
    if result["__typename"] != "WorkspaceLocationEntry" or result["loadStatus"] != "LOADED":
        raise ServiceError(f"reloading the code location failed: {result}")
    server_id = json.loads(result["versionKey"])[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(files.daemon_view.read_text())["server_ids"].get(LOCATION_NAME) == server_id:
                return
        time.sleep(0.5)
    raise ServiceError(f"the daemon did not load the reloaded code location within {timeout:.0f} s")


def serve_in_foreground(home: Path, project: Path, *, port: int, paths: DataPaths, say=None) -> int:
    """``bio-assets ui``: the instance's service until Ctrl-C, or the running one's URL while this
    command holds a lease on it."""
    say = say or _say
    files = ServiceFiles.of(home)
    state = running_service(files)
    if state is not None:
        return _follow_as_client(files, state, say)
    supervisor = Supervisor(home, port=port, paths=paths, idle=None, project=project, say=say)
    return supervisor.serve(on_ready=lambda url: say(f"Dagster UI at {url} (instance {home}); Ctrl-C stops it"))


def _follow_as_client(files: ServiceFiles, state: ServiceState, say) -> int:
    lease = ClientLease(files)
    stopping: list[int] = []

    def request_stop(signum, _frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    say(f"Dagster UI at {state.url}: the service of this instance already runs; this command keeps it up until Ctrl-C")
    try:
        while not stopping and state.supervisor.still_running():
            time.sleep(0.5)
        return 0 if stopping else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lease.release()


def run_detached_service(home: Path, project: Path, *, port: int, idle: float, paths: DataPaths) -> int:
    """``bio-assets service``: the service a client started, until it has been idle for ``idle`` s."""
    return Supervisor(home, port=port, paths=paths, idle=idle, project=project).serve()
