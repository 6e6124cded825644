"""Run-config presets of the jobs: each profile's settings written out as run config,
so the launchpad shows them and a run of another profile's job overrides them."""

from __future__ import annotations

from collections.abc import Iterable

from bio_assets.core.profiles import PROFILE_SETTINGS, PROFILES


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
        for name, config in PROFILE_SETTINGS[profile].items()
        if wanted is None or name in wanted
    }
    return {"ops": ops} if ops else {}
