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

Run as ``python -m bio_assets.app.daemon run ...`` (the arguments of ``dagster-daemon``).
"""

from __future__ import annotations

import logging
import os
import time

BACKFILL_TICK_ENV = "BIO_ASSETS_BACKFILL_TICK_SECONDS"
DEFAULT_BACKFILL_TICK_SECONDS = 3
RETRY_DECISION_WAIT_SECONDS = 300.0


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


if __name__ == "__main__":
    shorten_backfill_tick()
    wait_for_retry_decisions()
    from dagster._daemon.cli import main

    main()
