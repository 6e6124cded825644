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
        assert ops[op_name("demo", "trained_gan")]["config"]["iterations"] == (600 if profile == "demo" else 100_000)


def test_paper_splits_keep_the_sources_80_20_with_validation_carved_from_train():
    from bio_assets.core.profiles import profile_setting

    fractions = {f: profile_setting("paper", "image_splits", f) for f in ("train_fraction", "val_fraction")}
    assert profile_setting("paper", "image_splits", "test_fraction") == pytest.approx(0.20)
    assert fractions["train_fraction"] + fractions["val_fraction"] == pytest.approx(0.80)
    assert fractions["val_fraction"] > 0  # the search scores candidates on validation images, never on test
