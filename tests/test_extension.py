"""The extension study: real + synthetic against a real-only control with as many optimizer steps."""

from __future__ import annotations

import pytest
import torch

import bio_assets.core.cnn.evaluation as evaluation_module
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


def study(fake: LabelledImages, *, seeds: int = 2, tstr: bool = True, per_class: int = 0, equal_epochs: bool = True):
    # Only 4 real training images: the control learns little; synthetic images decide the outcome.
    data = ClassificationData(
        train=brightness_classes(4, 0), val=brightness_classes(8, 1), test=brightness_classes(40, 2),
        class_names=("dark", "bright"), version="t",
    )  # fmt: skip
    spec = architecture_spec("searched", 2, 4, NetworkSpec("32-1", "1-[]", 4, 2))
    params = TrainParams(epochs=4, batch_size=8, learning_rate=0.05, seed=3)
    seen = []
    result = extension_study(
        spec, data, fake, params, seeds=seeds, device=CPU, tstr=tstr, extension_per_class=per_class,
        equal_epoch_control=equal_epochs, on_seed=lambda what, run: seen.append((what, run.seed, run.steps)),
    )  # fmt: skip
    return result, seen


@pytest.mark.slow(seconds=6)
def test_the_control_makes_as_many_steps_from_the_same_initializations_and_the_gain_is_measured_against_it(
    monkeypatch,
):
    starts = []
    real_build = evaluation_module.build_architecture

    def recording(spec):
        model = real_build(spec)
        starts.append(torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()]))
        return model

    monkeypatch.setattr(evaluation_module, "build_architecture", recording)
    result, seen = study(brightness_classes(60, 5))
    # 4 real + 60 synthetic images in batches of 8: 8 steps per epoch, 32 in 4 epochs; the real-only
    # control makes the same 32 (16 passes over its 4 images), the equal-epoch control 4.
    assert sorted(seen) == sorted(
        [(what, seed, 32) for what in ("real + synthetic", "real only (control, equal steps)") for seed in (3, 4)]
        + [("real only (equal epochs)", seed, 4) for seed in (3, 4)]
        + [("synthetic only (TSTR)", seed, 32) for seed in (3, 4)]
    )
    assert result.extended.steps == result.control.steps == 32 and result.control_equal_epochs.steps == 4
    # Seed s of every model starts from the same weights; the two seeds start apart.
    control_starts, extended_starts = starts[0:2], starts[2:4]
    for control, extended in zip(control_starts, extended_starts):
        torch.testing.assert_close(control, extended, rtol=0, atol=0)
    assert not torch.equal(control_starts[0], control_starts[1])
    extended_accuracy = result.extended.summary("test_accuracy")[0]
    control_accuracy = result.control.summary("test_accuracy")[0]
    assert result.gain.value == pytest.approx(extended_accuracy - control_accuracy)
    assert result.gain.low <= result.gain.value <= result.gain.high and result.gain.seeds == 2
    assert result.num_added == 60 and result.gain_equal_epochs is not None
    assert len(result.tstr_test_labels) == 40 and result.tstr.summary("test_accuracy")[0] > 0.9
    assert result.chance == 0.5 and result.tstr_chance == 0.5


@pytest.mark.slow(seconds=6)
def test_synthetic_images_with_swapped_labels_show_a_negative_gain_tstr_below_chance_and_a_disagreeing_judge():
    result, _ = study(brightness_classes(60, 5, flipped=True), seeds=1)
    assert result.gain.value < 0 and result.gain.high < 0.1
    assert result.tstr.summary("test_accuracy")[0] < 0.2
    # The real-only control, trained on correctly labelled images, calls most swapped images the other class.
    assert result.class_agreement.value < result.agreement_chance == 0.5
    no_tstr, seen = study(brightness_classes(60, 5), seeds=1, tstr=False, equal_epochs=False)
    assert no_tstr.tstr is None and no_tstr.control_equal_epochs is None
    assert {what for what, _, _ in seen} == {"real + synthetic", "real only (control, equal steps)"}
    assert no_tstr.control.test_correct().shape == (1, 40)


@pytest.mark.slow(seconds=4)
def test_without_synthetic_images_added_there_is_no_gain_and_no_second_training():
    none = LabelledImages(torch.zeros((0, 12, 12, 3), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    result, seen = study(none, seeds=1)
    assert result.num_added == 0 and result.gain is None and result.gain_equal_epochs is None
    assert result.extended is result.control and result.tstr is None and result.class_agreement is None
    assert [what for what, _, _ in seen] == ["real only (control, equal steps)"]
    assert seen[0][2] == 4  # 4 real images, one batch, 4 epochs


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
    assert sizes == [4, 4 + 2 * 5, 4, 60]  # the control; real + 5 per class; the equal-epoch control; TSTR on all 60
    assert result.extended_data.train.labels[4:].tolist() == [0, 1] * 5  # the first 5 of each class, in order
