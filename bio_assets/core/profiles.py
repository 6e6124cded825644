"""Settings that differ between the ``paper`` profile (the source's values) and ``demo``.

One table serves both the job run-config presets and the assets' fallbacks, so a run
started by automation (which carries no preset) uses its dataset's profile too.
"""

from __future__ import annotations

from collections.abc import Mapping

PROFILES: tuple[str, ...] = ("demo", "paper")

# input_size 0: candidates train at the dataset resolution.
_PAPER_SEARCH = {"population_size": 100, "cycles": 30, "sample_size": 25, "epochs": 10, "input_size": 0}
_DEMO_SEARCH = {"population_size": 8, "cycles": 8, "sample_size": 3, "epochs": 6, "input_size": 32}

# GAN networks: image size, widths (generator channels at its first resolution, discriminator
# channels at full size) and batch are shared by the search, the final training and the baselines.
_PAPER_GAN = {"image_size": 64, "generator_width": 1024, "discriminator_width": 64, "batch_size": 128}
_DEMO_GAN = {"image_size": 32, "generator_width": 32, "discriminator_width": 8, "batch_size": 16}
_PAPER_GAN_SEARCH = {
    **_PAPER_GAN,
    "population_size": 100,
    "cycles": 25,
    "sample_size": 25,
    "epochs": 30,
    "fid_samples": 2000,
}
_DEMO_GAN_SEARCH = {**_DEMO_GAN, "population_size": 2, "cycles": 2, "sample_size": 2, "epochs": 1, "fid_samples": 250}

PROFILE_SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "paper": {
        "image_splits": {"train_fraction": 0.70, "val_fraction": 0.15, "test_fraction": 0.15},
        "augmented_dataset": {"target_per_class": 200},
        "searched_cell": _PAPER_SEARCH,
        "macro_architecture": _PAPER_SEARCH,
        "classifier": {"epochs": 50, "seeds": 3},
        "optimizer_comparison": {"epochs": 30, "seeds": 3},
        "feature_extractors": {"biocnn1_epochs": 40, "biocnn2_epochs": 100, "width": 32},
        "generator": _PAPER_GAN_SEARCH,
        "discriminator": _PAPER_GAN_SEARCH,
        "trained_gan": {
            **_PAPER_GAN,
            "iterations": 100_000,
            "fid_every": 5000,
            "checkpoint_every": 1000,
            "fid_samples": 2000,
        },
        # The source's baselines: 15 000 iterations, batch 64, FID after 1k, 5k, 10k and 15k.
        "gan_baselines": {
            **_PAPER_GAN,
            "batch_size": 64,
            "iterations": 15_000,
            "fid_every": 1000,
            "checkpoint_every": 1000,
            "fid_samples": 2000,
        },
        "synthetic_dataset": {"images_per_class": 4000, "max_class_fid": 150.0},
        # The source retrained its searched CNN for 100 epochs on real + synthetic images.
        "extended_classifier": {"epochs": 100, "seeds": 3},
    },
    "demo": {
        "image_splits": {"train_fraction": 0.70, "val_fraction": 0.15, "test_fraction": 0.15},
        "augmented_dataset": {"target_per_class": 120},
        "searched_cell": _DEMO_SEARCH,
        "macro_architecture": {**_DEMO_SEARCH, "population_size": 6, "cycles": 6},
        "classifier": {"epochs": 6, "seeds": 1},
        # Baselines take per-model values (paper: core.cnn.baselines; demo: DEMO_BASELINES below),
        # so the job presets carry none and each partition falls back to its own.
        "optimizer_comparison": {"epochs": 3, "seeds": 1},
        "feature_extractors": {"biocnn1_epochs": 15, "biocnn2_epochs": 6, "width": 8},
        "generator": _DEMO_GAN_SEARCH,
        "discriminator": _DEMO_GAN_SEARCH,
        # trained_gan and gan_baselines share one iteration budget so their FIDs compare.
        "trained_gan": {**_DEMO_GAN, "iterations": 300, "fid_every": 100, "checkpoint_every": 100, "fid_samples": 250},
        "gan_baselines": {
            **_DEMO_GAN,
            "iterations": 300,
            "fid_every": 100,
            "checkpoint_every": 100,
            "fid_samples": 250,
        },
        "synthetic_dataset": {"images_per_class": 64, "max_class_fid": 150.0},
        "extended_classifier": {"epochs": 6, "seeds": 1},
    },
}


# The demo's heaviest baselines, cut to fit 2 CPU cores without bf16 units (VGG-16 alone took
# 531 s at 64 px for 8 epochs on an AVX2-only EPYC, mostly in its 7x7x512 -> 4096 -> 4096
# classifier, whose cost does not shrink with the input): fewer epochs, and 32 px where the
# architecture allows it (AlexNet needs at least 63 px).
DEMO_BASELINES: dict[str, int] = {
    "epochs": 8,
    "batch_size": 32,
    "input_size": 0,
    "seeds": 1,
}  # epochs as the classifier
DEMO_BASELINE_OVERRIDES: dict[str, dict[str, int]] = {
    "alexnet": {"epochs": 4},
    "vgg16": {"epochs": 1, "input_size": 32},
    "resnet50": {"epochs": 4, "input_size": 32},
}


def profile_setting(profile: str, asset_name: str, field: str) -> object:
    """The value of ``field`` for ``asset_name`` under ``profile``; ``ValueError`` if unknown."""
    if profile not in PROFILE_SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    try:
        return PROFILE_SETTINGS[profile][asset_name][field]
    except KeyError:
        raise ValueError(f"profile {profile!r} has no setting {asset_name}.{field}") from None


# Settings a dataset may set for the per-model baseline partitions (core.cnn.baselines).
BASELINE_SETTINGS = ("epochs", "batch_size", "input_size", "seeds")


def resolve_settings(
    values: Mapping[str, object],
    profile: str,
    asset_name: str,
    *,
    dataset_settings: Mapping[str, Mapping[str, object]] | None = None,
    fallback: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Each of ``values`` (``None`` = not set in the run) resolved in this order: the run's own
    value, the dataset's setting for ``asset_name``, ``fallback`` (per-model values of the
    baselines), the profile's setting. ``ValueError`` when none has it."""
    own = (dataset_settings or {}).get(asset_name, {})
    resolved = {}
    for field, value in values.items():
        if value is None and field in own:
            value = own[field]
        if value is None and fallback is not None and field in fallback:
            value = fallback[field]
        resolved[field] = profile_setting(profile, asset_name, field) if value is None else value
    return resolved


def settable_fields(asset_name: str) -> set[str]:
    """The settings a dataset (or a profile) may give ``asset_name``."""
    fields = {f for settings in PROFILE_SETTINGS.values() for f in settings.get(asset_name, {})}
    return fields | set(BASELINE_SETTINGS) if asset_name == "baseline_classifiers" else fields


def validate_dataset_settings(dataset: str, settings: Mapping[str, Mapping[str, object]]) -> None:
    """``ValueError`` naming the asset or setting a dataset's ``settings`` cannot set."""
    known_assets = {a for s in PROFILE_SETTINGS.values() for a in s} | {"baseline_classifiers"}
    for asset_name, values in settings.items():
        if asset_name not in known_assets:
            raise ValueError(
                f"dataset {dataset!r}: settings name unknown asset {asset_name!r}; settable: {sorted(known_assets)}"
            )
        unknown = set(values) - settable_fields(asset_name)
        if unknown:
            raise ValueError(
                f"dataset {dataset!r}: {asset_name} has no setting {sorted(unknown)}; "
                f"settable: {sorted(settable_fields(asset_name))}"
            )
