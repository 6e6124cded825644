"""Run-status sensors that tell users when a training run ends (the source's tool notified its
users when training finished): a JSON message to a webhook, optionally an e-mail."""

from __future__ import annotations

import dagster as dg

from resources.notifier import NotifierResource
from resources.paths import default_sensor_status

# Assets whose runs take long enough that someone waits for them.
TRAINING_ASSETS = frozenset(
    {
        "searched_cell",
        "macro_architecture",
        "classifier",
        "baseline_classifiers",
        "optimizer_comparison",
        "feature_extractors",
        "generator",
        "discriminator",
        "trained_gan",
        "gan_baselines",
        "extended_classifier",
    }
)
KEY_METRICS = (
    "genotype",
    "val_accuracy",
    "test_accuracy",
    "test_macro_f1",
    "fid",
    "tstr_accuracy",
    "accuracy_gain",
    "wall_seconds",
)


def run_asset_keys(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[dg.AssetKey]:
    """The assets a run targets: its selection, else the materializations it planned."""
    if run.asset_selection:
        return set(run.asset_selection)
    planned = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return {r.dagster_event.asset_key for r in planned if r.dagster_event and r.dagster_event.asset_key}


def training_assets(keys: set[dg.AssetKey]) -> list[str]:
    return sorted(k.to_user_string() for k in keys if k.path[-1] in TRAINING_ASSETS)


def run_metrics(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, object]]:
    """``asset [partition]`` -> the key numbers its materialization in this run recorded."""
    metrics: dict[str, dict[str, object]] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is None:
            continue
        name = materialization.asset_key.to_user_string()
        if materialization.partition:
            name += f" [{materialization.partition}]"
        values = {k: v.value for k, v in materialization.metadata.items() if k in KEY_METRICS}
        metrics[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
    return metrics


def failure_reasons(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    reasons = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        while error is not None and error.cause is not None:
            error = error.cause
        reasons.append(f"{event.step_key if event else '?'}: {error.message.strip() if error else 'failed'}")
    return reasons


def build_message(run: dg.DagsterRun, status: str, facts: dict, *, assets: list[str], url: str) -> dict:
    """A Slack-style incoming-webhook payload (``text`` + ``blocks``) with the same facts as
    structured JSON under ``bio_assets`` for other receivers. ``facts``: ``metrics`` and ``failures``."""
    metrics, reasons = facts.get("metrics", {}), facts.get("failures", [])
    partition = run.tags.get("dagster/partition")
    icon = ":white_check_mark:" if status == "SUCCESS" else ":x:"
    where = ", ".join(assets) + (f" [{partition}]" if partition else "")
    lines = [f"{icon} {where}: run {run.run_id[:8]} {status.lower()}"]
    lines += [f"• {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()) for name, values in metrics.items()]
    lines += [f"• {reason}" for reason in reasons[:5]]
    lines.append(f"<{url}|open the run in Dagster>")
    text = "\n".join(lines)
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "bio_assets": {
            "run_id": run.run_id,
            "status": status,
            "assets": assets,
            "partition": partition,
            "metrics": metrics,
            "failures": reasons,
            "url": url,
        },
    }


def will_be_retried(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the run-retry daemon reruns this failed run. Dagster writes ``dagster/will_retry`` just
    after the failure, so a sensor may see the run first: then the same decision is computed here
    (Dagster's own function, private to the pinned release)."""
    from dagster._core.events import RunFailureReason
    from dagster._core.execution.retries import auto_reexecution_should_retry_run
    from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG, WILL_RETRY_TAG

    decided = run.tags.get(WILL_RETRY_TAG)
    if decided is not None:
        return decided.lower() == "true"
    reason = run.tags.get(RUN_FAILURE_REASON_TAG)
    known = reason in RunFailureReason.__members__
    return auto_reexecution_should_retry_run(instance, run, RunFailureReason(reason) if known else None)


def notify(context: dg.RunStatusSensorContext, notifier: NotifierResource, status: str) -> dg.SkipReason | None:
    run = context.dagster_run
    assets = training_assets(run_asset_keys(context.instance, run))
    if not assets:
        return dg.SkipReason(f"run {run.run_id[:8]} materializes no training asset")
    if status == "FAILURE" and will_be_retried(context.instance, run):
        return dg.SkipReason(f"run {run.run_id[:8]} will be retried: its retry reports how it ends")
    if not notifier.enabled():
        return dg.SkipReason("no webhook or e-mail configured")
    facts = {
        "metrics": run_metrics(context.instance, run.run_id),
        "failures": failure_reasons(context.instance, run.run_id) if status != "SUCCESS" else [],
    }
    message = build_message(run, status, facts, assets=assets, url=notifier.run_url(run.run_id))
    for failure in notifier.send(message, subject=message["text"].splitlines()[0]):
        context.log.warning(f"notification not delivered: {failure}")
    return None


def build_notification_sensors() -> list[dg.SensorDefinition]:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="training_succeeded_notification",
        default_status=default_sensor_status(),
        description="Posts a message when a run that trains a network succeeds (off unless configured).",
    )
    def training_succeeded(context: dg.RunStatusSensorContext, notifier: NotifierResource):
        return notify(context, notifier, "SUCCESS")

    @dg.run_failure_sensor(
        name="training_failed_notification",
        default_status=default_sensor_status(),
        description="Posts a message when a run that trains a network fails (off unless configured).",
    )
    def training_failed(context: dg.RunFailureSensorContext, notifier: NotifierResource):
        return notify(context, notifier, "FAILURE")

    return [training_succeeded, training_failed]
