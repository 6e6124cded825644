"""Materializes a dataset's asset graph against the persistent instance at ``$DAGSTER_HOME``.

A Dagster run materializes one partition, so the driver runs the per-class assets one
run per class first, then the unpartitioned downstream assets in one run; every run
and materialization lands in the instance that ``make ui`` opens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.definitions.asset_selection import DagsterInvalidAssetSelectionError
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from bio_assets.assets.metadata import latest_metadata
from bio_assets.assets.partitions import class_partitions_name
from bio_assets.checks.gates import CHECK_DONE
from bio_assets.core.gan.baselines import GAN_BASELINES
from bio_assets.core.registry import DatasetEntry
from bio_assets.definitions import load_definitions
from jobs.presets import run_config
from resources.image_dataset import ImageDatasetResource

GPU_POOL = "gpu"
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
    "accuracy_gain",
    "num_synthetic_images",
    "num_shortfalls",
    "wall_seconds",
)
LOG_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@contextmanager
def open_instance() -> Iterator[dg.DagsterInstance]:
    if not os.environ.get("DAGSTER_HOME"):
        raise ValueError(
            "DAGSTER_HOME is not set; run through `make demo` or export DAGSTER_HOME=<folder with dagster.yaml>"
        )
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.get() as instance:
        yield instance


def sync_class_partitions(instance: dg.DagsterInstance, dataset: str, class_names: list[str]) -> None:
    """Make the dataset's class partitions exactly its class folders."""
    name = class_partitions_name(dataset)
    existing = set(instance.get_dynamic_partitions(name))
    if set(class_names) - existing:
        instance.add_dynamic_partitions(name, sorted(set(class_names) - existing))
    for gone in sorted(existing - set(class_names)):
        instance.delete_dynamic_partition(name, gone)


def root_cause(error) -> str:
    """The innermost message of a Dagster ``SerializableErrorInfo`` chain: the user's own error."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else "failed"


def step_failures(result: dg.ExecuteInProcessResult, where: str) -> list[str]:
    """``step [where]: reason`` for each failed step of a run."""
    messages = [
        f"{event.step_key} [{where}]: {root_cause(event.event_specific_data.error)}"
        for event in result.all_events
        if event.is_step_failure and event.event_specific_data is not None
    ]
    return messages or [f"run for {where} failed"]


# Assets whose blocking checks are quality gates: a failed gate is reported and read by the
# assets downstream (extended_classifier leaves that class out) instead of stopping the graph.
GATED_ASSETS = ("synthetic_dataset",)


def batch_kind(graph, key: dg.AssetKey, class_partitions: str) -> tuple:
    """How a key runs: ``("class",)`` one run per class, ``("all",)`` unpartitioned, or
    ``("static", keys)`` one run per key of its static partitions."""
    partitions_def = graph.get(key).partitions_def
    if partitions_def is None:
        return ("all",)
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition) and partitions_def.name == class_partitions:
        return ("class",)
    return ("static", tuple(partitions_def.get_partition_keys()))


def plan_batches(graph, keys: list[dg.AssetKey], class_partitions: str) -> list[tuple[tuple, list[dg.AssetKey]]]:
    """Batches of keys in dependency order: each batch holds keys of one kind whose selected
    parents ran in earlier batches or sit in the same batch (one Dagster run orders those)."""
    selected, done, batches = set(keys), set(), []
    kinds = sorted(
        {batch_kind(graph, k, class_partitions) for k in keys},
        key=lambda kind: ({"class": 0, "all": 1}.get(kind[0], 2), kind),
    )
    remaining = list(keys)
    while remaining:
        for kind in kinds:
            batch: list[dg.AssetKey] = []
            grew = True
            while grew:
                grew = False
                for key in remaining:
                    parents = set(graph.get(key).parent_keys) & selected
                    if (
                        key not in batch
                        and batch_kind(graph, key, class_partitions) == kind
                        and parents <= done | set(batch)
                    ):
                        batch.append(key)
                        grew = True
            if batch:
                batches.append((kind, batch))
                done |= set(batch)
                remaining = [k for k in remaining if k not in done]
                break
        else:
            raise ValueError(
                f"cannot order {[k.to_user_string() for k in remaining]}: their parents are never materialized"
            )
    return batches


def materialized_in(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.all_events if event.is_step_materialization}


def materialize_dataset(entry: DatasetEntry, profile: str, select: str, registry: Path) -> list[str]:
    """Materialize ``select`` (restricted to ``entry``'s assets); returns failure messages."""
    started = time.perf_counter()
    failures: list[str] = []
    outcomes: dict[tuple[str, str | None], str] = {}
    with open_instance() as instance:
        # Definitions are loaded inside the instance scope: Dagster reads its state storage from there.
        defs = load_definitions(registry)
        graph = defs.resolve_asset_graph()
        try:
            selected = dg.AssetSelection.from_string(select).resolve(graph)
        except DagsterInvalidAssetSelectionError as err:
            raise ValueError(f"invalid --select {select!r}: {err}") from None
        keys = sorted((k for k in selected if k.path[0] == entry.name), key=lambda k: k.to_user_string())
        if not keys:
            raise ValueError(f"selection {select!r} matches no asset of dataset {entry.name!r}")
        class_partitions = class_partitions_name(entry.name)
        classes = sorted(ImageDatasetResource().layout(entry.name).class_folders())
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
        sync_class_partitions(instance, entry.name, classes)
        broken: set[dg.AssetKey] = set()  # keys that failed (in any partition) or were skipped
        for kind, batch in plan_batches(graph, keys, class_partitions):
            names = sorted(k.path[-1] for k in batch)
            partitions = classes if kind[0] == "class" else kind[1] if kind[0] == "static" else [None]
            upstream_broken = sorted(
                {p.to_user_string() for k in batch for p in graph.get(k).parent_keys if p in broken}
            )
            if upstream_broken:
                # These assets read every partition of their parents: running them on what worked would be wrong.
                broken |= set(batch)
                outcomes.update({(k.to_user_string(), p): "skipped" for k in batch for p in partitions})
                failures.append(
                    f"{', '.join(names)} [{entry.name}]: skipped because upstream {', '.join(upstream_broken)} "
                    "failed or was skipped"
                )
                continue
            config = {**run_config(entry.name, profile, names), **LOG_CONFIG}
            job = defs.resolve_implicit_job_def_def_for_assets(batch)
            for partition in partitions:
                where = entry.name + (f" {'class ' if kind[0] == 'class' else ''}{partition}" if partition else "")
                print(f"== {where}: {', '.join(names)}", flush=True)
                result = job.execute_in_process(
                    instance=instance,
                    asset_selection=batch,
                    partition_key=partition,
                    run_config=config,
                    raise_on_error=False,
                    tags={"bio_assets/profile": profile},
                )
                made = materialized_in(result)
                for key in batch:
                    outcomes[(key.to_user_string(), partition)] = "ok" if key in made else "failed"
                gates_only = made >= set(batch) and all(k.path[-1] in GATED_ASSETS for k in batch)
                if not result.success and gates_only:
                    print(
                        f"   quality gates failed for {where}; downstream assets leave this partition out (see the "
                        "check results)",
                        flush=True,
                    )
                elif not result.success:
                    failures += step_failures(result, where)
                    # Unmaterialized keys are broken; when all materialized, a failed blocking check breaks the batch.
                    broken |= (set(batch) - made) or set(batch)
        print_summary(instance, graph, entry.name, outcomes)
    print(
        f"\nwall time {time.perf_counter() - started:.1f} s; profile {profile}; instance {os.environ['DAGSTER_HOME']}"
    )
    print("Open the UI with `make ui` (http://127.0.0.1:3000) to see runs, lineage, metadata and checks.")
    return failures


def summarize(dataset: str, registry: Path) -> None:
    """Print what is materialized for ``dataset`` in the instance."""
    with open_instance() as instance:
        print_summary(instance, load_definitions(registry).resolve_asset_graph(), dataset, outcomes={})


def check_outcomes(instance: dg.DagsterInstance, graph, key: dg.AssetKey, partition: str | None) -> tuple[int, int]:
    """(passed, evaluated) over the newest evaluation of each check of ``key`` for ``partition``."""
    passed = evaluated = 0
    for check_key in graph.get_check_keys_for_assets([key]):
        # Planned-but-never-run evaluations (their run failed first) do not count.
        history = instance.event_log_storage.get_asset_check_execution_history(
            check_key,
            limit=1,
            status=set(CHECK_DONE),
            partition_filter=PartitionKeyFilter(key=partition) if partition is not None else None,
        )
        if history:
            latest = history[0]
            evaluated += 1
            passed += int(latest.status == AssetCheckExecutionRecordStatus.SUCCEEDED)
    return passed, evaluated


def _short(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


def print_summary(
    instance: dg.DagsterInstance, graph, dataset: str, outcomes: dict[tuple[str, str | None], str]
) -> None:
    """One line per asset and partition: status of this invocation, key numbers, checks."""
    rows = [("asset", "partition", "status", "numbers")]
    classes = sorted(instance.get_dynamic_partitions(class_partitions_name(dataset)))
    for key in sorted(
        (k for k in graph.get_all_asset_keys() if k.path[0] == dataset), key=lambda k: k.to_user_string()
    ):
        partitions_def = graph.get(key).partitions_def
        if partitions_def is None:
            partitions: list[str | None] = [None]
        elif isinstance(partitions_def, dg.DynamicPartitionsDefinition):
            partitions = list(classes)
        else:
            partitions = list(partitions_def.get_partition_keys())
        for partition in partitions:
            metadata = latest_metadata(instance, key, partition)
            status = outcomes.get((key.to_user_string(), partition), "materialized" if metadata else "missing")
            numbers = ", ".join(f"{n}={_short(metadata[n])}" for n in SUMMARY_NUMBERS if n in metadata)
            passed, total = check_outcomes(instance, graph, key, partition)
            checks = f"checks {passed}/{total} passed" if total else ""
            rows.append((key.to_user_string(), partition or "-", status, "; ".join(p for p in (numbers, checks) if p)))
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    print()
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
    print_gan_comparison(instance, dataset)
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
    for name, meta in sorted(baselines.items()):
        if "fid" not in meta:
            lines.append(f"  {name:<13} not materialized")
            continue
        budget = (
            "same budget"
            if meta.get("iterations") == iterations
            else f"{meta.get('iterations')} iterations: NOT the same budget"
        )
        verdict = "searched GAN is better" if fid < meta["fid"] else "searched GAN is NOT better"
        lines.append(f"  {name:<13} FID {meta['fid']:.3f} ({budget}); {verdict}")
    return lines


def print_gan_comparison(instance: dg.DagsterInstance, dataset: str) -> None:
    searched = latest_metadata(instance, dg.AssetKey([dataset, "trained_gan"]), None)
    baselines = {
        name: latest_metadata(instance, dg.AssetKey([dataset, "gan_baselines"]), name) for name in GAN_BASELINES
    }
    lines = gan_comparison_lines(searched, baselines)
    if lines:
        print()
        print("\n".join(lines))
