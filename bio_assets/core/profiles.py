"""Settings that differ between the ``paper`` profile (the source's values) and ``demo``.

One table serves both the job run-config presets and the assets' fallbacks, so a run
started by automation (which carries no preset) uses its dataset's profile too.
"""

from __future__ import annotations

PROFILES: tuple[str, ...] = ("demo", "paper")

# input_size 0: candidates train at the dataset resolution.
_PAPER_SEARCH = {"population_size": 100, "cycles": 30, "sample_size": 25, "epochs": 10, "input_size": 0}
_DEMO_SEARCH = {"population_size": 8, "cycles": 8, "sample_size": 3, "epochs": 6, "input_size": 32}

PROFILE_SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "paper": {
        "augmented_dataset": {"target_per_class": 200},
        "searched_cell": _PAPER_SEARCH,
        "macro_architecture": _PAPER_SEARCH,
        "classifier": {"epochs": 50, "seeds": 3},
        "optimizer_comparison": {"epochs": 30, "seeds": 3},
    },
    "demo": {
        "augmented_dataset": {"target_per_class": 120},
        "searched_cell": _DEMO_SEARCH,
        "macro_architecture": _DEMO_SEARCH,
        "classifier": {"epochs": 8, "seeds": 1},
        # Per-model paper values (epochs, batch, native input) live in core.cnn.baselines.
        "baseline_classifiers": {"epochs": 8, "batch_size": 32, "input_size": 0, "seeds": 1},  # same epochs as the classifier
        "optimizer_comparison": {"epochs": 3, "seeds": 1},
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


def resolve_profile(values: dict[str, object], profile: str, asset_name: str) -> dict[str, object]:
    """``values`` with every ``None`` replaced by the profile's setting for that field."""
    return {field: profile_setting(profile, asset_name, field) if value is None else value for field, value in values.items()}
