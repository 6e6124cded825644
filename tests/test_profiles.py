"""Profile settings: per-model demo baselines reach the assets, and presets never pin them."""

from __future__ import annotations

import pytest

from bio_assets.core.cnn.baselines import baseline_defaults
from jobs.presets import op_name, run_config


def test_demo_baselines_take_their_per_model_budget():
    assert baseline_defaults("resnet18", "demo") == {"epochs": 8, "batch_size": 32, "input_size": 0, "seeds": 1}
    assert baseline_defaults("vgg16", "demo") == {"epochs": 1, "batch_size": 32, "input_size": 32, "seeds": 1}
    assert baseline_defaults("vgg16", "paper")["input_size"] == 224
    with pytest.raises(ValueError, match="unknown profile"):
        baseline_defaults("vgg16", "laptop")


def test_presets_leave_baselines_to_their_per_model_fallback():
    for profile in ("demo", "paper"):
        ops = run_config("demo", profile)["ops"]
        assert op_name("demo", "baseline_classifiers") not in ops
        assert ops[op_name("demo", "trained_gan")]["config"]["iterations"] == (300 if profile == "demo" else 100_000)
