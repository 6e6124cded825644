"""The service's daemon: Dagster's daemon with a shorter backfill tick (bio_assets.app.daemon)."""

from __future__ import annotations

import threading

import pytest

from bio_assets.app import daemon
from bio_assets.app.dev_server import with_our_daemon


def test_dev_server_swaps_only_the_daemon_module():
    daemon_command = ["/py", "-m", "dagster._daemon", "run", "--shutdown-pipe", "7"]
    assert with_our_daemon(daemon_command) == ["/py", "-m", "bio_assets.app.daemon", "run", "--shutdown-pipe", "7"]
    webserver = ["/py", "-m", "dagster_webserver", "--port", "3000"]
    assert with_our_daemon(webserver) == webserver


def test_the_backfill_loop_sleeps_the_shortened_tick(monkeypatch):
    """Runs one iteration of Dagster's own backfill loop: it must wait our tick, not 30 s."""
    import dagster._daemon.backfill as backfill
    import dagster._daemon.controller as controller

    monkeypatch.setenv(daemon.BACKFILL_TICK_ENV, "2")
    monkeypatch.setattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", controller.DEFAULT_DAEMON_INTERVAL_SECONDS)
    assert daemon.shorten_backfill_tick() == 2
    monkeypatch.setattr(backfill, "execute_backfill_iteration", lambda *args, **kwargs: iter(()))

    waited = []

    class RecordingEvent(threading.Event):
        def wait(self, timeout=None):
            waited.append(timeout)
            return False

    loop = backfill.execute_backfill_iteration_loop(None, None, RecordingEvent())
    for item in loop:
        if item is None:  # the end of one iteration, after its wait
            break
    assert len(waited) == 1 and 1.9 <= waited[0] <= 2.0


@pytest.mark.parametrize("raw", ["0", "soon"])
def test_a_bad_tick_setting_is_a_clear_error(monkeypatch, raw):
    monkeypatch.setenv(daemon.BACKFILL_TICK_ENV, raw)
    with pytest.raises(ValueError, match=daemon.BACKFILL_TICK_ENV):
        daemon.backfill_tick_seconds()
