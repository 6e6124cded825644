"""The one ``Definitions`` of the bio-assets code location, built from the dataset registry."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from bio_assets.checks.data import build_data_checks
from bio_assets.checks.gates import build_synthetic_checks
from bio_assets.core.registry import DatasetEntry, load_registry
from jobs.automation import build_automation
from jobs.pipelines import build_dataset_assets, build_pipeline_jobs
from resources.catalog import CatalogResource
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager
from resources.paths import registry_path
from resources.search_executor import SearchExecutorResource

# Per-class asset checks (partitions_def on a check) are a Dagster preview feature; we rely on
# it deliberately, so its warning is silenced here rather than printed at every load.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)
warnings.filterwarnings("ignore", message="Parameter `include_sources`", category=dg.BetaWarning)


def build_definitions(entries: list[DatasetEntry], resources: dict | None = None) -> dg.Definitions:
    """Every registered dataset's asset graph, jobs, sensor and schedules."""
    assets, checks, jobs = [], [], []
    for entry in entries:
        assets += build_dataset_assets(entry.name)
        checks += build_data_checks(entry.name) + build_synthetic_checks(entry.name)
        jobs += build_pipeline_jobs(entry.name)
    defaults = {
        "catalog": CatalogResource(),
        "compute": ComputeResource(),
        "feature_extractor": FeatureExtractorResource(),
        "image_dataset": ImageDatasetResource(),
        "io_manager": AssetFileIOManager(),
        "search_executor": SearchExecutorResource(),
    }
    automation = build_automation(entries, jobs)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=[d for d in automation if isinstance(d, dg.ScheduleDefinition)],
        sensors=[d for d in automation if isinstance(d, dg.SensorDefinition)],
        resources={**defaults, **(resources or {})},
    )


def load_definitions(registry: Path | None = None) -> dg.Definitions:
    return build_definitions(load_registry(registry or registry_path()))


defs = load_definitions()
