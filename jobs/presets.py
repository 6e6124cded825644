"""Run-config presets: ``paper`` is every config class's defaults (the source's values);
``demo`` shrinks what must shrink for a CPU laptop."""

from __future__ import annotations

from collections.abc import Iterable

from bio_assets.core.registry import PROFILES

PROFILE_ASSET_CONFIG: dict[str, dict[str, dict]] = {
    "paper": {},
    "demo": {
        "augmented_dataset": {"target_per_class": 120},
    },
}


def op_name(dataset: str, asset_name: str) -> str:
    """Dagster's op name for the asset ``dataset/asset_name``."""
    return f"{dataset}__{asset_name}"


def run_config(dataset: str, profile: str, asset_names: Iterable[str] | None = None) -> dict:
    """Run config of ``profile`` for ``dataset``, limited to ``asset_names`` when given."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    wanted = None if asset_names is None else set(asset_names)
    ops = {
        op_name(dataset, name): {"config": config}
        for name, config in PROFILE_ASSET_CONFIG[profile].items()
        if wanted is None or name in wanted
    }
    return {"ops": ops} if ops else {}
