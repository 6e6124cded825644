"""Run-status notifications: a Slack-style JSON message about a finished training run reaches a
webhook on 127.0.0.1; a failing webhook is logged, never raised; nothing is sent unless configured."""

from __future__ import annotations

import json
import threading
import warnings
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from jobs.notifications import build_message, build_notification_sensors, will_be_retried
from resources.notifier import NotifierResource

warnings.filterwarnings("ignore", category=DeprecationWarning)


class Receiver(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Receiver.received, Receiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@dg.asset(key=["tiny", "classifier"])
def classifier() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"test_accuracy": 0.91234, "wall_seconds": 3.0, "ignored": "x"})


@dg.asset(key=["tiny", "searched_cell"])
def searched_cell() -> None:
    raise ValueError("class folder /data/x has no valid image")


@dg.asset(key=["tiny", "raw_images"])
def raw_images() -> None:
    return None


def finished_run(instance, asset, status):
    result = dg.materialize([asset], instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    event_type = dg.DagsterEventType.RUN_SUCCESS if status == "SUCCESS" else dg.DagsterEventType.RUN_FAILURE
    event = instance.all_logs(run.run_id, of_type=event_type)[-1].dagster_event
    return run, event


def evaluate(sensor, instance, run, event, notifier):
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=event, dagster_instance=instance, dagster_run=run,
        resources={"notifier": notifier},
    )  # fmt: skip
    return sensor(context)


def sensors():
    succeeded, failed = build_notification_sensors()
    return succeeded, failed


def test_success_message_with_run_asset_metrics_and_link(webhook):
    succeeded, _ = sensors()
    with dg.instance_for_test() as instance:
        run, event = finished_run(instance, classifier, "SUCCESS")
        evaluate(succeeded, instance, run, event, NotifierResource(webhook_url=webhook, ui_url="http://ui:3000"))
    (content_type, message), *_ = Receiver.received
    assert content_type == "application/json"
    assert message["text"].startswith(":white_check_mark: tiny/classifier: run") and "success" in message["text"]
    assert message["blocks"][0]["type"] == "section"  # the shape Slack's incoming webhooks take
    facts = message["bio_assets"]
    assert facts["run_id"] == run.run_id and facts["status"] == "SUCCESS" and facts["assets"] == ["tiny/classifier"]
    assert facts["metrics"] == {"tiny/classifier": {"test_accuracy": 0.9123, "wall_seconds": 3.0}}
    assert facts["url"] == f"http://ui:3000/runs/{run.run_id}"


def test_failure_message_names_the_error(webhook):
    _, failed = sensors()
    with dg.instance_for_test() as instance:
        run, event = finished_run(instance, searched_cell, "FAILURE")
        evaluate(failed, instance, run, event, NotifierResource(webhook_url=webhook))
    (_, message), *_ = Receiver.received
    assert message["bio_assets"]["status"] == "FAILURE"
    assert "class folder /data/x has no valid image" in message["text"]


def test_a_failing_webhook_is_logged_and_never_raised(webhook):
    succeeded, _ = sensors()
    Receiver.status = 500
    with dg.instance_for_test() as instance:
        run, event = finished_run(instance, classifier, "SUCCESS")
        evaluate(succeeded, instance, run, event, NotifierResource(webhook_url=webhook))
        unreachable = NotifierResource(webhook_url="http://127.0.0.1:9/none", timeout_seconds=2)
        evaluate(succeeded, instance, run, event, unreachable)
    assert len(Receiver.received) == 1  # delivered once, answered 500, no exception
    failures = NotifierResource(webhook_url="http://127.0.0.1:9/none", timeout_seconds=2).send({"text": "x"}, "x")
    assert failures and failures[0].startswith("webhook http://127.0.0.1:9/none")


def test_nothing_is_sent_unless_configured_or_for_runs_without_training(webhook):
    succeeded, _ = sensors()
    with dg.instance_for_test() as instance:
        run, event = finished_run(instance, classifier, "SUCCESS")
        evaluate(succeeded, instance, run, event, NotifierResource(webhook_url=""))
        data_run, data_event = finished_run(instance, raw_images, "SUCCESS")
        evaluate(succeeded, instance, data_run, data_event, NotifierResource(webhook_url=webhook))
    assert Receiver.received == []


def test_email_goes_through_smtp_when_configured():
    import socket

    lines = []

    def fake_smtp(server_socket):
        connection, _ = server_socket.accept()
        stream = connection.makefile("rwb")

        def reply(text):
            stream.write(text.encode() + b"\r\n")
            stream.flush()

        reply("220 localhost ready")
        in_data = False
        for raw in stream:
            line = raw.decode().rstrip("\r\n")
            lines.append(line)
            if in_data:
                if line == ".":
                    in_data = False
                    reply("250 queued")
                continue
            verb = line.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                reply("250 localhost")
            elif verb == "DATA":
                in_data = True
                reply("354 go ahead")
            elif verb == "QUIT":
                reply("221 bye")
                break
            else:
                reply("250 ok")
        connection.close()

    server_socket = socket.socket()
    server_socket.bind(("127.0.0.1", 0))
    server_socket.listen(1)
    thread = threading.Thread(target=fake_smtp, args=(server_socket,), daemon=True)
    thread.start()
    notifier = NotifierResource(
        webhook_url="", smtp_host="127.0.0.1", smtp_port=server_socket.getsockname()[1], email_to="lab@example.org"
    )
    assert notifier.enabled()
    assert notifier.send({"text": "trained_gan finished"}, subject="trained_gan finished") == []
    thread.join(timeout=10)
    server_socket.close()
    assert "rcpt TO:<lab@example.org>" in [line.lower().replace("to:", "TO:") for line in lines]
    assert "trained_gan finished" in lines


def test_message_lists_at_most_five_failures():
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id="r" * 36, asset_selection={dg.AssetKey(["d", "trained_gan"])})
    facts = {"failures": [f"step {i}: boom" for i in range(9)]}
    message = build_message(run, "FAILURE", facts, assets=["d/trained_gan"], url="http://ui/runs/r")
    assert message["text"].count("boom") == 5 and len(message["bio_assets"]["failures"]) == 9


def test_a_run_that_will_be_retried_sends_no_failure_notification(webhook):
    """With crash retries on, a crashed run is retried and its retry reports. Dagster may tag the decision
    after the sensor sees the failure, so an untagged run gets the same decision computed."""
    _, failed = sensors()
    retries = {"run_retries": {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}}
    with dg.instance_for_test(overrides=retries) as instance:
        run, event = finished_run(instance, searched_cell, "FAILURE")
        instance.add_run_tags(run.run_id, {"dagster/will_retry": "true"})
        evaluate(failed, instance, instance.get_run_by_id(run.run_id), event, NotifierResource(webhook_url=webhook))
        assert Receiver.received == []
        instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})  # the retry daemon decided otherwise
        evaluate(failed, instance, instance.get_run_by_id(run.run_id), event, NotifierResource(webhook_url=webhook))
        assert [m["bio_assets"]["status"] for _, m in Receiver.received] == ["FAILURE"]
        # Not yet tagged: a vanished worker is retried, a failed step is not (retry_on_asset_or_op_failure off).
        for reason, retried in (("UNEXPECTED_TERMINATION", True), ("STEP_FAILURE", False)):
            untagged = dg.DagsterRun(
                job_name="j", run_id=f"untagged-{reason}", status=dg.DagsterRunStatus.FAILURE,
                tags={"dagster/failure_reason": reason},
            )  # fmt: skip
            instance.add_run(untagged)
            assert will_be_retried(instance, untagged) is retried
