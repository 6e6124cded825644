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
    """SIGKILL each pid; the ones that were still there."""
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed
