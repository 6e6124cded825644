"""What the CLI prints after a materialization: one line per asset and partition, the GAN
comparison, and the failures of a backfill's runs named by asset and partition."""

from __future__ import annotations

import dagster as dg

from bio_assets.assets.metadata import check_results_of_run, latest_materialization_run, latest_metadata
from bio_assets.assets.partitions import class_partitions_name
from bio_assets.checks.gates import GATE_NAMES

SUMMARY_NUMBERS = (
    "num_images",
    "num_rejected",
    "num_skipped",
    "num_train",
    "num_val",
    "num_test",
    "num_augmented",
    "genotype",
    "val_accuracy",
    "num_evaluations",
    "num_trainings",
    "test_accuracy",
    "test_macro_f1",
    "source_accuracy",
    "val_accuracy_biocnn1",
    "val_accuracy_biocnn2",
    "fid",
    "fid_extractor",
    "iterations",
    "tstr_accuracy",
    "tstr_chance",
    "control_accuracy",
    "accuracy_gain",
    "accuracy_gain_ci_low",
    "accuracy_gain_ci_high",
    "num_synthetic_images_added",
    "class_agreement_real_classifier",
    "class_agreement_biocnn1",
    "num_shortfalls",
    "profile",
    "wall_seconds",
)


def _short(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


def root_cause(error) -> str:
    """The innermost message of a Dagster ``SerializableErrorInfo`` chain: the user's own error."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else "failed"


def partitions_of(instance: dg.DagsterInstance, graph, key: dg.AssetKey, dataset: str) -> list[str | None]:
    partitions_def = graph.get(key).partitions_def
    if partitions_def is None:
        return [None]
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return sorted(instance.get_dynamic_partitions(class_partitions_name(dataset)))
    return list(partitions_def.get_partition_keys())


def summary_rows(instance: dg.DagsterInstance, defs: dg.Definitions, dataset: str, runs: list) -> list[tuple]:
    """(asset, partition, status, numbers) for every materializable asset of ``dataset``; status is
    what ``runs`` (one backfill) did to it, else whether it is materialized at all."""
    from bio_assets.app.driver import OPT_IN_GROUPS

    graph = defs.resolve_asset_graph()
    in_runs = {r.run_id for r in runs}
    rows = []
    keys = sorted((k for k in graph.get_all_asset_keys() if k.path[0] == dataset), key=lambda k: k.to_user_string())
    for key in (k for k in keys if graph.get(k).is_materializable):
        for partition in partitions_of(instance, graph, key, dataset):
            metadata = latest_metadata(instance, key, partition)
            run_id = latest_materialization_run(instance, key, partition)
            if run_id in in_runs:
                status = "ok"
            elif not metadata and graph.get(key).group_name in OPT_IN_GROUPS:
                status = "opt-in"  # not part of "everything": it runs when named (--select or the UI)
            elif runs:
                status = "not made" if not metadata else "unchanged"
            else:
                status = "materialized" if metadata else "missing"
            numbers = ", ".join(f"{n}={_short(metadata[n])}" for n in SUMMARY_NUMBERS if n in metadata)
            checks = check_results_of_run(instance, run_id, key, partition) if run_id else {}
            passed = sum(e.passed for e in checks.values())
            check_text = f"checks {passed}/{len(checks)} passed" if checks else ""
            rows.append(
                (key.to_user_string(), partition or "-", status, "; ".join(p for p in (numbers, check_text) if p))
            )
    return rows


def print_summary(instance: dg.DagsterInstance, defs: dg.Definitions, dataset: str, runs: list) -> None:
    rows = [("asset", "partition", "status", "numbers"), *summary_rows(instance, defs, dataset, runs)]
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    print()
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
    lines = gan_comparison_lines(
        latest_metadata(instance, dg.AssetKey([dataset, "trained_gan"]), None),
        {
            p: latest_metadata(instance, dg.AssetKey([dataset, "gan_baselines"]), p)
            for p in partitions_of(
                instance, defs.resolve_asset_graph(), dg.AssetKey([dataset, "gan_baselines"]), dataset
            )
        },
    )
    if lines:
        print("\n" + "\n".join(lines))
    report = latest_metadata(instance, dg.AssetKey([dataset, "metric_reports"]), None).get("report_path")
    if report:
        print(f"\nReport: {report} (and in the UI: {dataset}/metric_reports, metadata 'report')")


def gan_comparison_lines(searched: dict, baselines: dict[str, dict]) -> list[str]:
    """The searched GAN's FID beside each baseline's, saying plainly whether it is better."""
    if not searched or "fid" not in searched:
        return []
    fid, iterations = searched["fid"], searched.get("iterations")
    lines = [
        f"GAN comparison ({searched.get('fid_extractor', '?')} FID, lower is better; searched GAN {fid:.3f} after "
        f"{iterations} iterations):"
    ]
    curve = searched.get("fid_by_iteration") or {}
    for name, meta in sorted(baselines.items()):
        if "fid" not in meta:
            lines.append(f"  {name:<13} not materialized")
            continue
        ours, budget = fid, "same budget"
        if meta.get("iterations") != iterations:
            if str(meta.get("iterations")) in curve:  # the searched GAN's curve at the baseline's budget
                ours = curve[str(meta["iterations"])]
                budget = f"same budget: searched GAN {ours:.3f} at {meta['iterations']} iterations"
            else:
                budget = f"{meta.get('iterations')} iterations: NOT the same budget"
        verdict = "searched GAN is better" if ours < meta["fid"] else "searched GAN is NOT better"
        lines.append(f"  {name:<13} FID {meta['fid']:.3f} ({budget}); {verdict}")
    return lines


def run_failures(instance: dg.DagsterInstance, runs: list[dg.DagsterRun], dataset: str) -> list[str]:
    """``asset [dataset class X]: reason`` for each failed step of the failed runs. A run whose only
    failures are quality gates is reported as such, not as a failure: the extended classifier
    leaves that class out and says why."""
    failures = []
    for run in runs:
        if run.status == dg.DagsterRunStatus.SUCCESS:
            continue
        partition = run.tags.get("dagster/partition")
        where = dataset + (f" class {partition}" if partition else "")
        steps = [
            (r.dagster_event.step_key, root_cause(getattr(r.dagster_event.event_specific_data, "error", None)))
            for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            if r.dagster_event is not None
        ]
        gate_only = steps and all(any(g in (key or "") for g in GATE_NAMES) for key, _ in steps)
        if gate_only:
            print(f"   quality gates failed for {where}; downstream assets leave this class out", flush=True)
            continue
        if steps:
            failures += [f"{key} [{where}]: {reason}" for key, reason in steps]
        elif run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            names = ", ".join(sorted(k.path[-1] for k in (run.asset_selection or set())))
            failures.append(f"{names} [{where}]: run {run.run_id[:8]} {run.status.value.lower()}")
    return failures
