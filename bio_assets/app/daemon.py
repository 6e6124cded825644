"""The Dagster daemon with a shorter backfill tick.

Dagster 1.13's backfill daemon sleeps a fixed ``DEFAULT_DAEMON_INTERVAL_SECONDS`` (30 s) between
iterations, and an asset backfill advances one step of the graph per iteration: the tiny graph
(about ten levels of partition changes) then spends five minutes only waiting. The constant is read
at each iteration (``dagster._daemon.backfill.execute_backfill_iteration_loop`` imports it inside
the loop), so setting it before the daemon starts shortens the tick; the other daemons take their
intervals from the instance (``run_monitoring``, ``auto_materialize``) and are unaffected. Private
to the pinned Dagster release; ``tests/test_service_daemon.py`` fails if a release stops reading it.

Run as ``python -m bio_assets.app.daemon run ...`` (the arguments of ``dagster-daemon``).
"""

from __future__ import annotations

import os

BACKFILL_TICK_ENV = "BIO_ASSETS_BACKFILL_TICK_SECONDS"
DEFAULT_BACKFILL_TICK_SECONDS = 3


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


if __name__ == "__main__":
    shorten_backfill_tick()
    from dagster._daemon.cli import main

    main()
