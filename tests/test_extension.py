"""The extension study: real + synthetic against a real-only control trained with the same settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bio_assets.core.cnn.extension as extension_module
from bio_assets.core.cnn.architectures import architecture_spec
from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.extension import extension_study, first_per_class
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import LabelledImages, TrainParams

CPU = torch.device("cpu")


def brightness_classes(n: int, seed: int, *, flipped: bool = False) -> LabelledImages:
    """Two classes told apart by brightness (class 1 bright; ``flipped``: class 1 dark)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    bright = labels == (0 if flipped else 1)
    base = torch.where(bright[:, None, None, None], 190, 60)
    noise = torch.randint(-25, 25, (n, 12, 12, 3), generator=generator)
    return LabelledImages((base + noise).clamp(0, 255).to(torch.uint8), labels)


def study(fake: LabelledImages, *, seeds: int = 2, tstr: bool = True, per_class: int = 0):
    # Only 4 real training images: the control learns little; synthetic images decide the outcome.
    data = ClassificationData(
        train=brightness_classes(4, 0), val=brightness_classes(8, 1), test=brightness_classes(40, 2),
        class_names=("dark", "bright"), version="t",
    )  # fmt: skip
    spec = architecture_spec("searched", 2, 4, NetworkSpec("32-1", "1-[]", 4, 2))
    params = TrainParams(epochs=4, batch_size=8, learning_rate=0.05, seed=3)
    seen = []
    result = extension_study(
        spec, data, fake, params, seeds=seeds, device=CPU, tstr=tstr, bootstrap_samples=200,
        extension_per_class=per_class,
        on_seed=lambda what, run: seen.append((what, run.seed, len(run.epoch_losses))),
    )  # fmt: skip
    return result, seen


@pytest.mark.slow(seconds=6)
def test_control_trains_with_the_same_settings_and_the_gain_is_measured_against_it():
    result, seen = study(brightness_classes(60, 5))
    # Every model: same seeds, same epochs; the control sees the real images only.
    assert sorted(seen) == sorted(
        (what, seed, 4)
        for what in ("real + synthetic", "real only (control)", "synthetic only (TSTR)")
        for seed in (3, 4)
    )
    extended_accuracy = result.extended.summary("test_accuracy")[0]
    control_accuracy = result.control.summary("test_accuracy")[0]
    assert result.gain["difference"] == pytest.approx(extended_accuracy - control_accuracy)
    assert result.gain["low"] <= result.gain["difference"] <= result.gain["high"]
    assert result.tstr_num_test_images == 40 and result.tstr.summary("test_accuracy")[0] > 0.9


@pytest.mark.slow(seconds=6)
def test_synthetic_images_with_swapped_labels_show_a_negative_gain_and_tstr_below_chance():
    result, _ = study(brightness_classes(60, 5, flipped=True), seeds=1)
    assert result.gain["difference"] < 0 and result.gain["high"] < 0.1
    assert result.tstr.summary("test_accuracy")[0] < 0.2
    no_tstr, seen = study(brightness_classes(60, 5), seeds=1, tstr=False)
    assert no_tstr.tstr is None and {what for what, _, _ in seen} == {"real + synthetic", "real only (control)"}
    assert np.all((no_tstr.control.test_correct() == 0) | (no_tstr.control.test_correct() == 1))


def test_first_per_class_keeps_the_first_images_of_each_label_in_their_order():
    labels = torch.tensor([1, 0, 1, 1, 0, 2, 0])
    images = LabelledImages(torch.arange(7, dtype=torch.uint8).reshape(7, 1, 1, 1).expand(7, 2, 2, 3), labels)
    kept = first_per_class(images, 2)
    assert kept.labels.tolist() == [1, 0, 1, 0, 2] and kept.images[:, 0, 0, 0].tolist() == [0, 1, 2, 4, 5]
    assert first_per_class(images, 0) is images and first_per_class(images, 9).labels.tolist() == labels.tolist()
    with pytest.raises(ValueError, match="per_class must be >= 0"):
        first_per_class(images, -1)


def test_the_extended_training_adds_at_most_per_class_synthetic_images_and_tstr_trains_on_all(monkeypatch):
    sizes = []
    real_train_and_test = extension_module.train_and_test

    def recording(spec, data, params, **kwargs):
        sizes.append(len(data.train.labels))
        return real_train_and_test(spec, data, params, **kwargs)

    monkeypatch.setattr(extension_module, "train_and_test", recording)
    result, _ = study(brightness_classes(60, 5), seeds=1, per_class=5)
    assert sizes == [4 + 2 * 5, 4, 60]  # real + 5 per class; the control; TSTR on all 60
    assert result.extended_data.train.labels[4:].tolist() == [0, 1] * 5  # the first 5 of each class, in order
