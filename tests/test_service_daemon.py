"""The service's daemon (bio_assets.app.daemon): Dagster's daemon with a shorter backfill tick, and backfills that
wait for their failed runs' retry decisions."""

from __future__ import annotations

import threading

import pytest

from bio_assets.app import daemon


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


def test_the_daemon_refreshes_its_workspace_as_soon_as_a_code_server_reloads(monkeypatch, tmp_path):
    """A reload changes the code server's id; the next loop of the controller refreshes the workspace
    (Dagster's own check would wait up to 60 s) and records the id it serves for clients to wait on."""
    import json
    import time
    from types import SimpleNamespace

    import dagster._daemon.controller as controller

    server = {"current": "first", "served": "first"}
    location = SimpleNamespace(server_id="first")
    client = SimpleNamespace(get_server_id=lambda: server["current"])
    entry = SimpleNamespace(code_location=location, origin=SimpleNamespace(create_client=lambda: client))
    context = SimpleNamespace(
        create_request_context=lambda: SimpleNamespace(get_code_location_entries=lambda: {"bio_assets": entry})
    )
    refreshes = []

    def dagsters_check(self, last_update: float) -> float:
        if time.time() - last_update > controller.RELOAD_WORKSPACE_INTERVAL:
            refreshes.append(last_update)
            location.server_id = server["current"]
            return time.time()
        return last_update

    monkeypatch.setattr(controller.DagsterDaemonController, "check_workspace_freshness", dagsters_check)
    view = tmp_path / "daemon-workspace.json"
    daemon.follow_code_server_reloads(view)
    daemon_controller = SimpleNamespace(_workspace_process_context=context)
    check = controller.DagsterDaemonController.check_workspace_freshness

    recent = time.time()
    assert check(daemon_controller, recent) == recent and refreshes == []  # nothing changed: no refresh
    assert json.loads(view.read_text()) == {"server_ids": {"bio_assets": "first"}}
    server["current"] = "second"  # the location was reloaded
    assert check(daemon_controller, recent) > recent and len(refreshes) == 1
    assert json.loads(view.read_text()) == {"server_ids": {"bio_assets": "second"}}
