"""The one ``Definitions`` of the bio-assets code location, built from the dataset registry."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from bio_assets.checks.data import build_data_checks
from bio_assets.core.profiles import validate_dataset_settings
from bio_assets.core.registry import DatasetEntry, load_registry
from jobs.automation import build_automation, with_rebuild_policy
from jobs.executors import step_executor
from jobs.notifications import build_notification_sensors
from jobs.pipelines import build_dataset_assets, build_pipeline_jobs
from resources.catalog import CatalogResource
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager
from resources.notifier import NotifierResource
from resources.paths import production, registry_path
from resources.search_executor import SearchExecutorResource

# Per-class asset checks (partitions_def on a check) are a Dagster preview feature; we rely on
# it deliberately, so its warning is silenced here rather than printed at every load.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)
warnings.filterwarnings("ignore", message="Parameter `include_sources`", category=dg.BetaWarning)
# Beta APIs used deliberately: observable sources (the class folders) and source-code references.
warnings.filterwarnings("ignore", category=dg.BetaWarning, module=r"dagster\._core\.(decorator_utils|definitions)")
warnings.filterwarnings("ignore", message=".*(observable_source_asset|with_source_code_references|CodeReference)")


def build_definitions(entries: list[DatasetEntry], resources: dict | None = None) -> dg.Definitions:
    """Every registered dataset's asset graph, checks, jobs, sensors and notifications."""
    resources = {
        "catalog": CatalogResource(),
        "compute": ComputeResource(),
        "feature_extractor": FeatureExtractorResource(),
        "image_dataset": ImageDatasetResource(),
        "io_manager": AssetFileIOManager(),
        "notifier": NotifierResource(),
        "search_executor": SearchExecutorResource(),
        **(resources or {}),
    }
    catalog_kind = resources["catalog"].dialect()
    assets, checks, jobs = [], [], []
    for entry in entries:
        validate_dataset_settings(entry.name, entry.settings)
        assets += with_rebuild_policy(build_dataset_assets(entry, catalog_kind), entry)
        checks += build_data_checks(entry.name)
        jobs += build_pipeline_jobs(entry.name)
    return dg.Definitions(
        assets=dg.with_source_code_references(assets),
        asset_checks=checks,
        jobs=jobs,
        sensors=[*build_automation(entries), *build_notification_sensors()],
        resources=resources,
        executor=step_executor(),  # BIO_ASSETS_STEP_EXECUTOR: in_process (default) or celery
    )


def load_definitions(registry: Path | None = None) -> dg.Definitions:
    """The definitions of every dataset in the registry. Without a registry file a development checkout
    has the demo only; production refuses to start, naming the file it looked for."""
    path = registry or registry_path()
    if production() and not Path(path).exists():
        raise FileNotFoundError(
            f"no dataset registry at {path}: production (BIO_ASSETS_PRODUCTION=1) starts only with one; "
            "create it (datasets.example.yaml) or point BIO_ASSETS_REGISTRY at it"
        )
    return build_definitions(load_registry(path))


defs = load_definitions()
