"""Metadata values shared by assets: image grids, file tables, progress logging."""

from __future__ import annotations

import base64
from collections.abc import Callable

import dagster as dg
import numpy as np

from bio_assets.core.data.walk import FileIssue
from bio_assets.core.reporting.grids import image_grid_png


def png_markdown(png: bytes, title: str) -> dg.MarkdownMetadataValue:
    """Markdown with an inline base64 PNG under a bold title."""
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def image_grid_markdown(images: np.ndarray, title: str, max_images: int = 16) -> dg.MarkdownMetadataValue:
    """Markdown with an inline base64 PNG grid of ``images`` uint8 ``(N, H, W, 3)``."""
    return png_markdown(image_grid_png(images, columns=8, max_images=max_images), title)


FILE_ISSUE_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn("file", "string"), dg.TableColumn("kind", "string"), dg.TableColumn("reason", "string")]
)


def file_issue_table(issues: list[FileIssue]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord({"file": i.file_name, "kind": i.kind, "reason": i.reason}) for i in issues],
        schema=FILE_ISSUE_SCHEMA,
    )


def progress_logger(context: dg.AssetExecutionContext, what: str) -> Callable[[int, int], None]:
    """A core progress callback that logs ``what: done/total`` about every 25% to the run log."""

    def report(done: int, total: int) -> None:
        step = max(total // 4, 1)
        if done == total or done % step == 0:
            context.log.info(f"{what}: {done}/{total}")

    return report


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> dict[str, object]:
    """Raw metadata values of the newest materialization of ``key`` (and partition), or ``{}``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition is not None else None), limit=1
    ).records
    if not records:
        return {}
    materialization = records[0].asset_materialization
    return {name: value.value for name, value in (materialization.metadata if materialization else {}).items()}


def latest_materialization_run(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> str | None:
    """The run id of the newest materialization of ``key`` (and partition), or ``None``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition is not None else None), limit=1
    ).records
    return records[0].run_id if records else None


def check_results_of_run(
    instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey, partition: str | None
) -> dict[str, dg.AssetCheckEvaluation]:
    """Check name -> the last evaluation, in run ``run_id``, of a check on ``key`` (and partition)."""
    results: dict[str, dg.AssetCheckEvaluation] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data if record.dagster_event else None
        if isinstance(evaluation, dg.AssetCheckEvaluation) and evaluation.asset_key == key:
            # Checks evaluated by the asset's own op carry no partition: the run's partition is theirs.
            if partition is None or evaluation.partition in (partition, None):
                results[evaluation.check_name] = evaluation
    return results


def latest_check_results(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None
) -> dict[str, dg.AssetCheckEvaluation]:
    """The checks evaluated on the newest materialization of ``key`` (in the run that made it)."""
    run_id = latest_materialization_run(instance, key, partition)
    return check_results_of_run(instance, run_id, key, partition) if run_id else {}
