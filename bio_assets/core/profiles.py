"""Settings that differ between the ``paper`` profile (the source's values) and ``demo``.

One table serves both the job run-config presets and the assets' fallbacks, so a run
started by automation (which carries no preset) uses its dataset's profile too.
"""

from __future__ import annotations

from collections.abc import Mapping

PROFILES: tuple[str, ...] = ("demo", "paper")

# input_size 0: candidates train at the dataset resolution.
# fitness_repeats: trainings per candidate, their mean validation accuracy its fitness (the source: 1).
_PAPER_SEARCH = {
    "population_size": 100, "cycles": 30, "sample_size": 25, "epochs": 10, "input_size": 0, "fitness_repeats": 1,
}  # fmt: skip
_DEMO_SEARCH = {
    "population_size": 8,
    "cycles": 8,
    "sample_size": 3,
    "epochs": 6,
    "input_size": 32,
    "fitness_repeats": 1,
}

# GAN networks: image size, widths (generator channels at its first resolution, discriminator
# channels at full size) and batch are shared by the search, the final training and the baselines.
_PAPER_GAN = {"image_size": 64, "generator_width": 1024, "discriminator_width": 64, "batch_size": 128}
# Generator width 64 costs the demo no time over 32 (its layers are small next to the discriminator's
# full-resolution ones) and lowers the FID (measured: 9.7 against 80 after 300 iterations).
_DEMO_GAN = {"image_size": 32, "generator_width": 64, "discriminator_width": 8, "batch_size": 16}
# How the searched pair learns (search candidates and trained_gan; the baselines keep their papers').
_PAPER_GAN_RECIPE = {
    "generator_lr": 1e-4,
    "discriminator_lr": 4e-4,
    "conditioning_lr_multiplier": 1.0,
    "auxiliary_classifier_weight": 0.0,
}
# The demo's 300 iterations at the source's TTUR rates leave the conditional BatchNorm's per-class
# gains and biases almost where they started (Adam moves a weight ~lr per step), and a projection
# discriminator learns its class embedding slowly: the generator then ignores its class. A 10x
# generator rate, its class parameters at a further 10x, and an auxiliary class head on the
# discriminator (AC-GAN) let the class in within the demo's budget (measured: docs/benchmarks.md).
_DEMO_GAN_RECIPE = {
    "generator_lr": 1e-3,
    "discriminator_lr": 4e-4,
    "conditioning_lr_multiplier": 10.0,
    "auxiliary_classifier_weight": 1.0,
}
_PAPER_GAN_SEARCH = {
    **_PAPER_GAN,
    **_PAPER_GAN_RECIPE,
    "population_size": 100,
    "cycles": 25,
    "sample_size": 25,
    "epochs": 30,
    "fid_samples": 2000,
}
_DEMO_GAN_SEARCH = {
    **_DEMO_GAN,
    **_DEMO_GAN_RECIPE,
    "population_size": 2,
    "cycles": 2,
    "sample_size": 2,
    "epochs": 1,
    "fid_samples": 250,
}

PROFILE_SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "paper": {
        # The source's 80/20 train/test; the validation images that score search candidates are
        # carved from its 80 (a tenth of all images), so the test split keeps the source's fifth.
        "image_splits": {"train_fraction": 0.70, "val_fraction": 0.10, "test_fraction": 0.20},
        "augmented_dataset": {"target_per_class": 200},
        # compare_random: random search at the same budget beside aging evolution ("Does it work?").
        "searched_cell": {**_PAPER_SEARCH, "compare_random": True},
        "macro_architecture": _PAPER_SEARCH,
        # select_on_validation: keep the pass with the best validation accuracy (the source: the last).
        "classifier": {"epochs": 50, "seeds": 3, "input_size": 0, "select_on_validation": False},
        "optimizer_comparison": {"epochs": 30, "seeds": 3},
        "feature_extractors": {"biocnn1_epochs": 40, "biocnn2_epochs": 100, "width": 32},
        "generator": _PAPER_GAN_SEARCH,
        "discriminator": _PAPER_GAN_SEARCH,
        "trained_gan": {
            **_PAPER_GAN,
            **_PAPER_GAN_RECIPE,
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
        # The source retrained its searched CNN with Adagrad for 100 epochs on real + synthetic images.
        "extended_classifier": {
            "epochs": 100,
            "seeds": 3,
            "optimizer": "adagrad",
            "input_size": 0,
            "synthetic_per_class": 0,  # every synthetic image
            "select_on_validation": False,
        },
        # Opt-in (never started by automation): the graph again at several training sizes per class.
        "data_efficiency": {
            "sizes": (10, 20, 50, 0),
            "seeds": 3,
            "epochs": 50,
            "fitness_repeats": 1,
            "select_on_validation": True,
            "min_synthetic_confidence": 0.0,
            "baselines": ("lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v3"),
        },
    },
    "demo": {
        "image_splits": {"train_fraction": 0.70, "val_fraction": 0.15, "test_fraction": 0.15},
        "augmented_dataset": {"target_per_class": 120},
        "searched_cell": {**_DEMO_SEARCH, "compare_random": False},
        "macro_architecture": {**_DEMO_SEARCH, "population_size": 6, "cycles": 6},
        # The demo's classifiers see 32 px, the size its GAN generates. Chosen with the extended
        # classifier's settings below on other draws of the demo data (bench.demo_settings, docs/method.md
        # §10): extended accuracy 0.948 at 32 px against 0.946 at 64, a tie that goes to the cheaper size.
        # Three seeds: the report's verdicts need them.
        "classifier": {"epochs": 6, "seeds": 3, "input_size": 32, "select_on_validation": False},
        # Baselines take per-model values (paper: core.cnn.baselines; demo: DEMO_BASELINES below),
        # so the job presets carry none and each partition falls back to its own.
        "optimizer_comparison": {"epochs": 3, "seeds": 1},
        "feature_extractors": {"biocnn1_epochs": 15, "biocnn2_epochs": 6, "width": 8},
        "generator": _DEMO_GAN_SEARCH,
        "discriminator": _DEMO_GAN_SEARCH,
        # trained_gan trains as long as the baselines (300 iterations, the same batch). Chosen on other
        # draws of the demo data by TSTR (bench.demo_settings, 512 images per class, mean over two draws):
        # 0.559 at 300, 0.539 at 600, 0.565 at 900 iterations, a tie that goes to the cheapest; the GANs
        # trained again gave 0.552 at 300 and 0.500 at 600.
        "trained_gan": {
            **_DEMO_GAN,
            **_DEMO_GAN_RECIPE,
            "iterations": 300,
            "fid_every": 100,
            "checkpoint_every": 100,
            "fid_samples": 250,
        },
        "gan_baselines": {
            **_DEMO_GAN,
            "iterations": 300,
            "fid_every": 100,
            "checkpoint_every": 100,
            "fid_samples": 250,
        },
        # 512 rather than 256 per class: TSTR 0.559 against 0.548 on other draws of the demo data
        # (bench.demo_settings); they cost seconds to generate and publish.
        "synthetic_dataset": {"images_per_class": 512, "max_class_fid": 150.0},
        # Adam as the demo classifier: Adagrad at Keras's 0.001 barely lowers the training loss in 6
        # epochs. Three seeds, as the source, and what a verdict needs. The real + synthetic training adds
        # 120 synthetic images per class (as many as the real augmented ones; TSTR trains on all 512):
        # chosen on other draws of the demo data (bench.demo_settings), extended accuracy 0.948 with 120
        # per class against 0.907 with 60, 0.924 with 240 and 0.946 with all 512.
        "extended_classifier": {
            "epochs": 6,
            "seeds": 3,
            "optimizer": "adam",
            "input_size": 32,
            "synthetic_per_class": 120,
            "select_on_validation": False,
        },
        "data_efficiency": {
            "sizes": (10, 20, 50, 0),
            "seeds": 3,
            "epochs": 15,
            "fitness_repeats": 2,
            "select_on_validation": True,
            "min_synthetic_confidence": 0.0,
            "baselines": ("lenet5", "resnet18"),
        },
    },
}


# The demo's heaviest baselines, cut to fit 2 CPU cores without bf16 units (VGG-16 alone took
# 531 s at 64 px for 8 epochs on an AVX2-only EPYC, mostly in its 7x7x512 -> 4096 -> 4096
# classifier, whose cost does not shrink with the input): fewer epochs, and 32 px where the
# architecture allows it (AlexNet needs at least 63 px).
DEMO_BASELINES: dict[str, int | float | bool] = {
    "epochs": 8,
    "batch_size": 32,
    "input_size": 0,
    "seeds": 1,
    "learning_rate": 1e-3,
    # Recompute BatchNorm statistics after training: MobileNetV3's momentum 0.01 leaves them near
    # their start after 8 short epochs (other draws of the demo data, bench.demo_settings
    # --baselines-only: 0.911 and 0.811 recomputed, chance without).
    "precise_bn": True,
}  # epochs as the classifier
DEMO_BASELINE_OVERRIDES: dict[str, dict[str, int | float]] = {
    "alexnet": {"epochs": 4},
    # VGG-16 has no BatchNorm: from random init at Adam 1e-3 it never leaves chance (other draws of the
    # demo data: 0.556 and 0.478 at 1e-4, chance at 1e-3; bench.demo_settings --baselines-only).
    "vgg16": {"epochs": 3, "input_size": 32, "learning_rate": 1e-4},
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
BASELINE_SETTINGS = ("epochs", "batch_size", "input_size", "seeds", "learning_rate", "precise_bn")


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


# Where a profile departs from the source's protocol, and why: the report's "Does it work?" section
# lists these beside its verdicts. Both profiles share the first rows (how bio-assets measures and
# builds what the source did); the demo adds its budgets.
_COMMON_DEPARTURES: list[tuple[str, str, str, str]] = [
    (
        "data-efficiency study (opt-in, `data_efficiency`)",
        "every classifier keeps the pass with the best validation accuracy (at most the study's epochs); the demo's "
        "search candidates average 2 trainings",
        "no such study; the last epoch; one training per candidate",
        "at about 20 images per class a fixed epoch count over- or under-trains as the training set changes size, "
        "and one training scored on a few dozen validation images is mostly seed noise (docs/method.md §11)",
    ),
    (
        "splits",
        "train / validation / test by source image before augmentation (paper 70/10/20, demo 70/15/15); only the "
        "train split is augmented",
        "80/20 train/test after augmenting",
        "augmenting before splitting puts copies of test images into training; a validation split scores search "
        "candidates and chooses every setting, so the test split is read once, by the final evaluations",
    ),
    (
        "what the gain is measured against",
        "a real-only control with as many optimizer steps, the same seeds and initializations (an equal-epoch "
        "control beside it); intervals over seeds and test images",
        "the real-only classifier of its own training",
        "otherwise part of the gain is the longer training on the larger set",
    ),
    (
        "reference images of FID, KID, KL and class agreement in the report",
        "the real test split",
        "not stated",
        "neither the feature extractors nor the GAN trained on it: FID against the GAN's own training images "
        "rewards memorization",
    ),
    (
        "generator weights scored and published",
        "an EMA of the generator (decay 0.999, warmed up as min(0.999, (1 + t) / (10 + t)))",
        "the generator itself (no EMA)",
        "the EMA's samples vary less between checkpoints; standard in GAN training since ProGAN",
    ),
    (
        "self-attention in the GAN",
        "keys and values max-pooled 2x2 (BigGAN's block)",
        "full resolution (SAGAN)",
        "a quarter of the attention's cost at 64 px, where full attention is 4096 x 4096 per image",
    ),
    (
        "GAN comparison",
        "the searched GAN is selected and compared on FID by one extractor against one reference; it trains with "
        "EMA, DiffAugment and class conditioning, the baselines (unconditional) with none",
        "the same",
        "the source's protocol, kept; the comparison favours the searched GAN by design",
    ),
]

PROFILE_DEPARTURES: dict[str, list[tuple[str, str, str, str]]] = {
    "paper": _COMMON_DEPARTURES,
    "demo": [
        *_COMMON_DEPARTURES,
        ("splits (demo)", "70/15/15", "80/20 train/test", "9 validation and 9 test images per class of 60"),
        ("augmented images per class", "120", "200", "time: 2 CPU cores, 20 minutes for the whole graph"),
        (
            "CNN search budget",
            "8 + 8 cell, 6 + 6 macro candidates, 6 epochs, 32 px",
            "100 + 30, 10 epochs, 64 px",
            "time",
        ),
        ("classifier epochs, seeds", "6, 3", "50, 3", "time"),
        (
            "classic CNN baselines",
            "8 epochs, batch 32, 1 seed, Adam 1e-3, BatchNorm statistics recomputed; AlexNet 4 epochs; VGG-16 3 "
            "epochs at 32 px, 1e-4; ResNet-50 4 epochs at 32 px",
            "30-50 epochs, batch 8-12, native inputs (32-227 px)",
            "time; with 1 seed no verdict is given on a baseline near chance",
        ),
        ("optimizer comparison", "3 epochs, 1 seed", "30 epochs", "time"),
        (
            "feature extractors (BioCNN-1 / BioCNN-2)",
            "15 / 6 epochs, width 8",
            "40 / 100 epochs, width 32",
            "time",
        ),
        (
            "GAN image size, widths, batch",
            "32 px, G 64, D 8, batch 16",
            "64 px, G 1024, D 64, batch 128",
            "time; the widths the source used take GPU-hours",
        ),
        (
            "GAN search budget",
            "2 + 2 candidates per stage, 1 epoch, FID of 250 images",
            "100 + 25 per stage, 30 epochs, FID of 2000",
            "time",
        ),
        (
            "GAN training iterations",
            "300, as the baselines",
            "100 000 (baselines 15 000)",
            "time; 300, 600 and 900 tied on other draws of the demo data",
        ),
        (
            "generator learning rate",
            "1e-3",
            "1e-4 (TTUR with D 4e-4)",
            "at 1e-4 Adam moves a weight ~0.03 in 300 steps: the generator barely changes",
        ),
        (
            "conditional-BatchNorm class gains and biases",
            "10x the generator's rate",
            "the generator's rate",
            "where the class enters the generator; at 1x they stay near their shared start in 300 steps",
        ),
        (
            "auxiliary class loss (AC-GAN head on the discriminator)",
            "weight 1, in the GAN search as in the final training",
            "none (projection term only)",
            "a projection discriminator learns its class embedding too slowly to teach classes in 300 steps; the "
            "demo's GAN architectures are therefore selected under another objective than the source's",
        ),
        (
            "extended classifier",
            "Adam, 6 epochs, 3 seeds",
            "Adagrad, 100 epochs, 3 seeds",
            "Adagrad at Keras's 0.001 barely moves in 6 epochs",
        ),
        ("synthetic images per class", "512", "4000", "time; chosen on other draws of the demo data"),
        (
            "synthetic images per class added to the real ones (extended classifier)",
            "120 (TSTR trains on all 512)",
            "all",
            "chosen on other draws of the demo data (docs/method.md)",
        ),
        (
            "classifier input",
            "32 px",
            "64 px",
            "the demo GAN generates 32 px; chosen on other draws of the demo data (docs/method.md)",
        ),
    ],
}


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def profile_help(asset_name: str, field: str, *also: str) -> str:
    """``"paper X, demo Y"``: the profiles' values of ``asset_name``'s ``field``, for launchpad help
    that cannot drift from this table. With ``also`` (other assets sharing the setting), each
    asset's values by name where they differ: ``"trained_gan: paper X, demo Y; gan_baselines: ..."``."""

    def values(name: str) -> str:
        found = [(p, PROFILE_SETTINGS[p].get(name, {}).get(field)) for p in ("paper", "demo")]
        missing = [p for p, v in found if v is None]
        if missing:
            raise ValueError(f"profile(s) {missing} set no {name}.{field}")
        return ", ".join(f"{p} {_shown(v)}" for p, v in found)

    shown = {name: values(name) for name in (asset_name, *also)}
    if len(set(shown.values())) == 1:
        return shown[asset_name]
    return "; ".join(f"{name}: {text}" for name, text in shown.items())
