"""Per-dataset asset jobs: ``<dataset>__demo_pipeline`` and ``<dataset>__paper_pipeline``."""

from __future__ import annotations

import dagster as dg

from bio_assets.assets.baselines import build_baseline_assets
from bio_assets.assets.classifier import build_classifier_asset
from bio_assets.assets.cnn_search import build_cnn_search_assets
from bio_assets.assets.common import PROFILE_TAG
from bio_assets.assets.data import build_data_assets
from bio_assets.assets.extended_classifier import build_extended_classifier_asset
from bio_assets.assets.gan_search import build_feature_extractor_asset, build_gan_search_assets
from bio_assets.assets.gan_training import build_gan_training_assets
from bio_assets.assets.reports import build_report_asset
from bio_assets.assets.studies import build_study_assets
from bio_assets.assets.synthesis import build_synthesis_asset
from bio_assets.core.profiles import PROFILES
from bio_assets.core.registry import DatasetEntry
from jobs.presets import run_config

# Asset names of the per-class chain, in dependency order.
CLASS_ASSET_NAMES: tuple[str, ...] = ("raw_images", "image_splits", "augmented_dataset")


def pipeline_job_name(dataset: str, profile: str) -> str:
    return f"{dataset}__{profile}_pipeline"


def build_pipeline_jobs(dataset: str) -> list[dg.UnresolvedAssetJobDefinition]:
    """One job per profile over the dataset's per-class assets, with that profile's config and tag."""
    selection = dg.AssetSelection.assets(*[dg.AssetKey([dataset, name]) for name in CLASS_ASSET_NAMES])
    return [
        dg.define_asset_job(
            name=pipeline_job_name(dataset, profile),
            selection=selection,
            config=run_config(dataset, profile, CLASS_ASSET_NAMES) or None,
            tags={PROFILE_TAG: profile},
            description=f"Per-class data assets of '{dataset}' with the {profile} settings.",
        )
        for profile in PROFILES
    ]


def build_dataset_assets(entry: DatasetEntry, catalog_kind: str = "sqlite") -> list:
    """Every asset of one dataset's graph (and its observed image folder), under its name's prefix."""
    return [
        *build_data_assets(entry),
        *build_cnn_search_assets(entry),
        build_classifier_asset(entry),
        *build_baseline_assets(entry),
        build_feature_extractor_asset(entry),
        *build_gan_search_assets(entry),
        *build_gan_training_assets(entry),
        build_synthesis_asset(entry, catalog_kind),
        build_extended_classifier_asset(entry),
        build_report_asset(entry),
        *build_study_assets(entry),
    ]
