"""Settings that differ between the ``paper`` profile (the source's values) and ``demo``.

One table serves both the job run-config presets and the assets' fallbacks, so a run
started by automation (which carries no preset) uses its dataset's profile too.
"""

from __future__ import annotations

PROFILES: tuple[str, ...] = ("demo", "paper")

PROFILE_SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "paper": {
        "augmented_dataset": {"target_per_class": 200},
    },
    "demo": {
        "augmented_dataset": {"target_per_class": 120},
    },
}


def profile_setting(profile: str, asset_name: str, field: str) -> object:
    """The value of ``field`` for ``asset_name`` under ``profile``; ``ValueError`` if unknown."""
    if profile not in PROFILE_SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    try:
        return PROFILE_SETTINGS[profile][asset_name][field]
    except KeyError:
        raise ValueError(f"profile {profile!r} has no setting {asset_name}.{field}") from None
