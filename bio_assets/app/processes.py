"""The processes behind a Dagster run, read from its events, and whether they are still alive.

The run worker logs ``Started process for run (pid: N).`` and each step process of the
multiprocess executor logs a step-worker-started event with its pid. A pid alone can be reused
by another process after the original exits, so a process counts as the run's only if it
started no later than the event that named it.
"""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

HOST_TAG = "bio_assets/worker_host"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# A process may start up to this long after the event that names it was stamped.
_START_SLACK_SECONDS = 5.0


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_start_time(pid: int) -> float | None:
    """When ``pid`` started (epoch seconds), or ``None`` when it does not exist or is a zombie.
    Without ``/proc`` (not Linux) it only says whether the pid exists (start time 0)."""
    stat_file = Path(f"/proc/{pid}/stat")
    boot = _boot_time()
    if boot is None or not Path("/proc").is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0
    try:
        text = stat_file.read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X"):
        return None
    return boot + int(fields[19]) / _CLOCK_TICKS


def alive(pid: int, named_at: float) -> bool:
    """Whether the process ``pid`` that an event stamped at ``named_at`` named still runs."""
    started = process_start_time(pid)
    return started is not None and started <= named_at + _START_SLACK_SECONDS


@dataclass(frozen=True)
class RunProcesses:
    """The processes a run's events name, with the time each was named."""

    worker: tuple[int, float] | None
    steps: tuple[tuple[int, float], ...]
    host: str | None

    @property
    def on_this_host(self) -> bool:
        return self.host is None or self.host == socket.gethostname()

    def worker_alive(self) -> bool | None:
        """``None`` when unknown (no pid yet, or another host)."""
        if self.worker is None or not self.on_this_host:
            return None
        return alive(*self.worker)

    def live_pids(self) -> list[int]:
        if not self.on_this_host:
            return []
        named = ([self.worker] if self.worker else []) + list(self.steps)
        return [pid for pid, at in named if alive(pid, at)]


def _pid(event_record) -> int | None:
    event = event_record.dagster_event
    data = getattr(event, "event_specific_data", None) if event else None
    value = (getattr(data, "metadata", None) or {}).get("pid")
    try:
        return int(value.value) if value is not None else None
    except (TypeError, ValueError):
        return None


def run_processes(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunProcesses:
    worker = None
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if record.message.startswith("Started process for run"):
            pid = _pid(record)
            if pid is not None:
                worker = (pid, record.timestamp)
    steps = []
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTED):
        pid = _pid(record)
        if pid is not None:
            steps.append((pid, record.timestamp))
    return RunProcesses(worker, tuple(steps), run.tags.get(HOST_TAG))


def kill_processes(pids: list[int]) -> list[int]:
    """SIGKILL each pid; the ones that were still there. A pid that now belongs to another user
    (reused after the run's process ended) is left alone."""
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return killed


def command_line(pid: int) -> tuple[str, ...] | None:
    """The arguments ``pid`` was started with (``/proc/<pid>/cmdline``), or ``None``."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as it was started: a pid is reused once its process ends, its start time and command
    line are not, so a signal goes only to a process that still matches all three."""

    pid: int
    started: float
    command: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        started, command = process_start_time(pid), command_line(pid)
        if started is None or command is None:
            return None
        return cls(pid, started, command)

    def still_running(self) -> bool:
        return ProcessIdentity.of(self.pid) == self

    def signal(self, sig: int) -> bool:
        """Send ``sig`` when the process is still this one; whether it was sent."""
        if not self.still_running():
            return False
        try:
            os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def as_json(self) -> dict:
        return {"pid": self.pid, "started": self.started, "command": list(self.command)}

    @classmethod
    def from_json(cls, data: dict) -> ProcessIdentity:
        return cls(int(data["pid"]), float(data["started"]), tuple(data["command"]))


def _listening_sockets(port: int) -> list[tuple[int, int]]:
    """(uid, socket inode) of every TCP socket listening on ``port``, any local address."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, uid, inode = fields[1], fields[3], int(fields[7]), int(fields[9])
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.append((uid, inode))
    return found


def _pid_with_socket(inode: int) -> int | None:
    """The process holding socket ``inode`` among those this user may inspect."""
    target = f"socket:[{inode}]"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:
            continue
    return None


def port_holder(port: int) -> str | None:
    """Who listens on TCP ``port`` of this machine, in words, or ``None`` when no one does."""
    sockets = _listening_sockets(port)
    if not sockets:
        return None
    uid, inode = sockets[0]
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        user = f"uid {uid}"
    pid = _pid_with_socket(inode)
    if pid is None:
        return f"a process of user {user}"
    command = " ".join(command_line(pid) or ())[:120]
    return f"pid {pid} of user {user} ({command})"
