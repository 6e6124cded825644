"""The Dagster daemon with a shorter backfill tick, and backfills that wait for retry decisions.

Dagster 1.13's backfill daemon sleeps a fixed ``DEFAULT_DAEMON_INTERVAL_SECONDS`` (30 s) between
iterations, and an asset backfill advances one step of the graph per iteration: the tiny graph
(about ten levels of partition changes) then spends five minutes only waiting. The constant is read
at each iteration (``dagster._daemon.backfill.execute_backfill_iteration_loop`` imports it inside
the loop), so setting it before the daemon starts shortens the tick; the other daemons take their
intervals from the instance (``run_monitoring``, ``auto_materialize``) and are unaffected. Private
to the pinned Dagster release; ``tests/test_service_daemon.py`` fails if a release stops reading it.

One race is closed as well. Dagster marks a failed run FAILURE and only then, in a second write,
tags whether it will be retried (``dagster/will_retry``); a backfill iteration that looks in between
finds no run in progress and none waiting to retry, completes the backfill as failed, and the retry
daemon then refuses to retry a run of a finished backfill: a run worker killed mid-training in a
one-asset backfill was never rerun. ``wait_for_retry_decisions`` keeps such a backfill in progress
until every failed run of it carries its decision (for at most ``RETRY_DECISION_WAIT_SECONDS``
after it ended, so a run the retry daemon never tags cannot hold a backfill for ever).

A reloaded code location reaches the daemon within seconds, not at its next full refresh (every
60 s): each loop of the daemon's controller (5 s) asks every code server for its server id, a cheap
call, and refreshes the workspace when one changed. The server ids the daemon serves are written to
``$BIO_ASSETS_DAEMON_VIEW`` (a JSON file), so that a client that reloaded the location can wait until
the daemon, which runs its backfills, knows the new assets.

Run as ``python -m bio_assets.app.daemon run ...`` (the arguments of ``dagster-daemon``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

BACKFILL_TICK_ENV = "BIO_ASSETS_BACKFILL_TICK_SECONDS"
DEFAULT_BACKFILL_TICK_SECONDS = 3
RETRY_DECISION_WAIT_SECONDS = 300.0
DAEMON_VIEW_ENV = "BIO_ASSETS_DAEMON_VIEW"


def backfill_tick_seconds() -> int:
    """The tick from ``$BIO_ASSETS_BACKFILL_TICK_SECONDS`` (default 3 s); at least 1 s."""
    raw = os.environ.get(BACKFILL_TICK_ENV, str(DEFAULT_BACKFILL_TICK_SECONDS))
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"{BACKFILL_TICK_ENV}={raw!r} is not a whole number of seconds") from None
    if seconds < 1:
        raise ValueError(f"{BACKFILL_TICK_ENV}={seconds} must be at least 1 second")
    return seconds


def shorten_backfill_tick() -> int:
    import dagster._daemon.controller as controller

    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = backfill_tick_seconds()
    return controller.DEFAULT_DAEMON_INTERVAL_SECONDS


def failed_runs_without_retry_decision(backfill_id: str, instance, *, now: float | None = None) -> list[str]:
    """Failed runs of the backfill that ended less than ``RETRY_DECISION_WAIT_SECONDS`` ago and do not
    yet say whether they will be retried; none when the instance does not retry runs."""
    import dagster as dg
    from dagster._core.storage.tags import BACKFILL_ID_TAG, WILL_RETRY_TAG

    if not instance.run_retries_enabled:
        return []
    now = time.time() if now is None else now
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}, statuses=[dg.DagsterRunStatus.FAILURE])
    )
    return [
        record.dagster_run.run_id
        for record in records
        if WILL_RETRY_TAG not in record.dagster_run.tags
        and now - (record.end_time or now) < RETRY_DECISION_WAIT_SECONDS
    ]


def wait_for_retry_decisions() -> None:
    """Wrap Dagster's ``backfill_runs_are_complete``: after its own checks (runs in progress, then
    runs waiting to retry), a backfill is complete only when none of its failed runs still lacks its
    retry decision, and, checked last, no run of it has started meanwhile (a retry launched after
    the first check)."""
    import dagster as dg
    import dagster._core.execution.asset_backfill as asset_backfill
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    dagsters_check = asset_backfill.backfill_runs_are_complete
    if getattr(dagsters_check, "waits_for_retry_decisions", False):
        return

    def backfill_runs_are_complete(backfill_id: str, instance, logger: logging.Logger) -> bool:
        if not dagsters_check(backfill_id, instance, logger):
            return False
        undecided = failed_runs_without_retry_decision(backfill_id, instance)
        if undecided:
            logger.info(f"Failed runs of backfill {backfill_id} not yet marked for retry or not: {undecided}")
            return False
        started = instance.get_run_ids(
            filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES, tags={BACKFILL_ID_TAG: backfill_id}), limit=1
        )
        return not started

    backfill_runs_are_complete.waits_for_retry_decisions = True
    asset_backfill.backfill_runs_are_complete = backfill_runs_are_complete


def served_and_current_server_ids(workspace_process_context) -> tuple[dict[str, str], dict[str, str]]:
    """Per code location: the server id the daemon's workspace holds, and the one its server has now."""
    served, current = {}, {}
    for name, entry in workspace_process_context.create_request_context().get_code_location_entries().items():
        location = entry.code_location
        if location is None or not hasattr(location, "server_id"):
            continue
        served[name] = location.server_id
        try:
            current[name] = entry.origin.create_client().get_server_id()
        except Exception:  # a server restarting: the next check asks again
            current[name] = location.server_id
    return served, current


def follow_code_server_reloads(view_file: Path | None) -> None:
    """Refresh the daemon's workspace as soon as a code server's id changes (a reload), and record
    the ids it serves in ``view_file``."""
    import dagster._daemon.controller as controller

    dagsters_check = controller.DagsterDaemonController.check_workspace_freshness
    if getattr(dagsters_check, "follows_reloads", False):
        return
    written: dict[str, str] = {}

    def check_workspace_freshness(self, last_workspace_update_time: float) -> float:
        context = self._workspace_process_context
        try:
            served, current = served_and_current_server_ids(context)
        except Exception:
            served = current = {}
        if served != current:
            # Old enough for Dagster's check to refresh now; young enough that a failed refresh stays
            # inside its freshness tolerance.
            overdue = time.time() - controller.RELOAD_WORKSPACE_INTERVAL - 1
            last_workspace_update_time = min(last_workspace_update_time, overdue)
        updated = dagsters_check(self, last_workspace_update_time)
        if view_file is not None:
            try:
                served, _ = served_and_current_server_ids(context)
            except Exception:
                return updated
            if served != written:
                temporary = view_file.with_name(f".{view_file.name}.{os.getpid()}")
                temporary.write_text(json.dumps({"server_ids": served}))
                os.replace(temporary, view_file)
                written.clear()
                written.update(served)
        return updated

    check_workspace_freshness.follows_reloads = True
    controller.DagsterDaemonController.check_workspace_freshness = check_workspace_freshness


def main() -> None:
    """``dagster-daemon``'s command line, with the fixes above: what ``bio-assets ui`` runs and what the
    production image installs as its ``dagster-daemon`` (deploy/Dockerfile)."""
    shorten_backfill_tick()
    wait_for_retry_decisions()
    view = os.environ.get(DAEMON_VIEW_ENV)
    follow_code_server_reloads(Path(view) if view else None)
    from dagster._daemon.cli import main as dagster_daemon

    dagster_daemon()


if __name__ == "__main__":
    main()
