"""The run launcher of ``dagster.yaml``: Dagster's default launcher (runs in a local code server's
subprocesses) plus a worker health check, so run monitoring notices a run whose worker died.

Dagster's ``DefaultRunLauncher`` cannot tell a dead run worker from a busy one, so a SIGKILLed
worker leaves its run STARTED and its pool slots claimed for ever. With this launcher the
monitoring daemon (``run_monitoring.poll_interval_seconds``) finds the worker gone, kills the
step processes it left behind, and marks the run failed; ``free_slots_after_run_end_seconds``
then frees its pool slots, and crash-only run retries start it again.
"""

from __future__ import annotations

import socket

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus

from bio_assets.app.processes import HOST_TAG, kill_processes, run_processes


class HealthCheckedRunLauncher(dg.DefaultRunLauncher):
    """``DefaultRunLauncher`` whose workers' health the monitoring daemon can check."""

    def launch_run(self, context: LaunchRunContext) -> None:
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: socket.gethostname()})
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        processes = run_processes(self._instance, run)
        state = processes.worker_alive()
        if state is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no worker pid recorded on this host")
        if state:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        orphans = kill_processes(processes.live_pids())
        note = f"; killed its orphaned step processes {orphans}" if orphans else ""
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker pid {processes.worker[0]} is gone{note}")
