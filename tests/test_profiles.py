"""Profile settings: per-model demo baselines reach the assets, and presets never pin them."""

from __future__ import annotations

import pytest

from bio_assets.core.cnn.baselines import baseline_defaults
from jobs.presets import op_name, run_config


def test_demo_baselines_take_their_per_model_budget():
    shared = {"batch_size": 32, "seeds": 1, "precise_bn": True}
    assert baseline_defaults("resnet18", "demo") == {**shared, "epochs": 8, "input_size": 0, "learning_rate": 1e-3}
    assert baseline_defaults("vgg16", "demo") == {**shared, "epochs": 3, "input_size": 32, "learning_rate": 1e-4}
    assert baseline_defaults("mobilenet_v3", "paper")["precise_bn"] is False  # the source's protocol
    assert baseline_defaults("vgg16", "paper")["input_size"] == 224
    with pytest.raises(ValueError, match="unknown profile"):
        baseline_defaults("vgg16", "laptop")


def test_presets_leave_baselines_to_their_per_model_fallback():
    for profile in ("demo", "paper"):
        ops = run_config("demo", profile)["ops"]
        assert op_name("demo", "baseline_classifiers") not in ops
        assert ops[op_name("demo", "trained_gan")]["config"]["iterations"] == (300 if profile == "demo" else 100_000)


def test_paper_splits_keep_the_sources_80_20_with_validation_carved_from_train():
    from bio_assets.core.profiles import profile_setting

    fractions = {f: profile_setting("paper", "image_splits", f) for f in ("train_fraction", "val_fraction")}
    assert profile_setting("paper", "image_splits", "test_fraction") == pytest.approx(0.20)
    assert fractions["train_fraction"] + fractions["val_fraction"] == pytest.approx(0.80)
    assert fractions["val_fraction"] > 0  # the search scores candidates on validation images, never on test


def test_every_launchpad_description_of_a_profile_setting_shows_the_profiles_values():
    """The help text of each setting a profile sets is built from the profile table
    (``profile_help``), so the launchpad cannot say "demo 8" where the demo runs 6."""
    import dagster as dg

    from bio_assets.core.profiles import PROFILE_SETTINGS, profile_help
    from bio_assets.definitions import defs

    wrong = []
    for asset in defs.assets:
        if not isinstance(asset, dg.AssetsDefinition) or asset.key.path[0] != "demo":
            continue
        name, config_type = asset.key.path[-1], asset.op.config_schema.config_type
        fields = getattr(config_type, "fields", {})
        for field in set(PROFILE_SETTINGS["paper"].get(name, {})) | set(PROFILE_SETTINGS["demo"].get(name, {})):
            description = fields[field].description or "" if field in fields else "(no such setting)"
            if profile_help(name, field) not in description:
                wrong.append(f"{name}.{field}: {description!r} lacks {profile_help(name, field)!r}")
    assert not wrong, "\n".join(wrong)
    assert profile_help("trained_gan", "iterations") == "paper 100000, demo 300"
    with pytest.raises(ValueError, match="set no classifier.nothing"):
        profile_help("classifier", "nothing")


def test_both_profiles_list_their_departures_from_the_source():
    from bio_assets.core.profiles import PROFILE_DEPARTURES

    def settings(profile: str) -> str:
        return " | ".join(" ".join(row) for row in PROFILE_DEPARTURES[profile])

    paper, demo = settings("paper"), settings("demo")
    # The paper profile departs too: EMA, pooled attention, splits, the control, the references, the GAN comparison.
    for what in ("EMA", "max-pooled 2x2", "before augmentation", "as many optimizer steps", "test split", "favours"):
        assert what in paper, what
    # The demo adds its budgets, its recipe and where its GAN search's objective differs from the source's.
    for what in ("AC-GAN", "in the GAN search", "FID of 250", "BioCNN-1", "optimizer comparison", "baselines"):
        assert what in demo, what
    assert all(len(row) == 4 and all(row) for rows in PROFILE_DEPARTURES.values() for row in rows)
