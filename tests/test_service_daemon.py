"""The service's daemon (bio_assets.app.daemon): Dagster's daemon with a shorter backfill tick, and backfills that
wait for their failed runs' retry decisions."""

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


def test_a_backfill_waits_until_its_failed_runs_say_whether_they_will_be_retried(monkeypatch):
    """Dagster marks a run FAILURE before it tags ``dagster/will_retry``; in between, its own check
    called the backfill complete, and the retry was then refused. Ours waits for the tag."""
    import logging

    import dagster as dg
    import dagster._core.execution.asset_backfill as asset_backfill
    from dagster._core.storage.tags import BACKFILL_ID_TAG, WILL_RETRY_TAG

    monkeypatch.setattr(asset_backfill, "backfill_runs_are_complete", asset_backfill.backfill_runs_are_complete)
    daemon.wait_for_retry_decisions()
    daemon.wait_for_retry_decisions()  # installing twice wraps once
    complete = asset_backfill.backfill_runs_are_complete
    assert complete.waits_for_retry_decisions
    logger = logging.getLogger("test")

    def failed_run(instance, backfill_id: str, **tags: str) -> str:
        run = dg.DagsterRun(
            job_name="job", status=dg.DagsterRunStatus.FAILURE, tags={BACKFILL_ID_TAG: backfill_id, **tags}
        )
        return instance.add_run(run).run_id

    with dg.instance_for_test(overrides={"run_retries": {"enabled": True}}) as instance:
        undecided = failed_run(instance, "b1")
        assert daemon.failed_runs_without_retry_decision("b1", instance) == [undecided]
        assert not complete("b1", instance, logger)
        instance.add_run_tags(undecided, {WILL_RETRY_TAG: "false"})
        assert daemon.failed_runs_without_retry_decision("b1", instance) == []
        assert complete("b1", instance, logger)
        failed_run(instance, "b1", **{WILL_RETRY_TAG: "true"})  # retry decided, not launched: Dagster's own check
        assert not complete("b1", instance, logger)
        instance.add_run(
            dg.DagsterRun(job_name="job", status=dg.DagsterRunStatus.STARTED, tags={BACKFILL_ID_TAG: "b2"})
        )
        assert not complete("b2", instance, logger)
    with dg.instance_for_test() as instance:  # no run retries: nothing to wait for
        failed_run(instance, "b3")
        assert daemon.failed_runs_without_retry_decision("b3", instance) == []
        assert complete("b3", instance, logger)
