"""Trainer, candidate evaluator and architecture specs on tiny tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bio_assets.core.cnn.architectures import architecture_spec, build_architecture
from bio_assets.core.cnn.candidates import CandidateEvaluator, SearchData
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.optimizers import KERAS_DEFAULTS, OPTIMIZERS, KerasRMSprop, make_optimizer
from bio_assets.core.cnn.training import (
    LabelledImages,
    Precision,
    TrainParams,
    evaluate_classifier,
    model_input,
    optimizer_steps,
    steps_per_epoch,
    train_classifier,
)

CPU = torch.device("cpu")


def separable(n: int = 48, size: int = 16, seed: int = 0) -> LabelledImages:
    """Two classes told apart by brightness: any working trainer learns them."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    base = torch.where(labels[:, None, None, None] == 1, 180, 60)
    noise = torch.randint(-30, 30, (n, size, size, 3), generator=generator)
    return LabelledImages((base + noise).clamp(0, 255).to(torch.uint8), labels)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_trains_at_its_defaults(optimizer):
    data = separable()
    report = train_classifier(
        tiny_net(), data, TrainParams(epochs=3, batch_size=8, optimizer=optimizer, learning_rate=None), CPU
    )
    assert len(report.epoch_losses) == 3 and all(np.isfinite(report.epoch_losses))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_keras_defaults_are_the_sources_learning_rates(optimizer):
    # The source compared optimizers at TensorFlow/Keras defaults: SGD 0.01, every other 0.001;
    # torch's own defaults differ (Adadelta 1.0, Adagrad 0.01, RMSprop 0.01).
    group = make_optimizer(optimizer, tiny_net().parameters(), None, defaults="keras").param_groups[0]
    assert group["lr"] == (0.01 if optimizer == "sgd" else 0.001)
    for name, value in KERAS_DEFAULTS[optimizer].items():
        assert group[name] == value
    assert make_optimizer(optimizer, tiny_net().parameters(), 0.5, defaults="keras").param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="defaults must be one of"):
        TrainParams(optimizer=optimizer, defaults="tensorflow")


def test_keras_adagrad_starts_its_accumulator_at_a_tenth():
    optimizer = make_optimizer("adagrad", tiny_net().parameters(), None, defaults="keras")
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    assert torch.all(state["sum"] == 0.1)


def test_keras_rmsprop_puts_epsilon_inside_the_root():
    # Keras: v = rho v + (1 - rho) g^2, w -= lr g / sqrt(v + eps). Two steps by hand, gradient 1e-4:
    # v1 = 0.1e-8 = 1e-9, step 1e-3 * 1e-4 / sqrt(1e-9 + 1e-7); v2 = 0.9e-9 + 1e-9.
    weight = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = make_optimizer("rmsprop", [weight], None, defaults="keras")
    assert isinstance(optimizer, KerasRMSprop)
    expected = 0.0
    for velocity in (1e-9, 1.9e-9):
        weight.grad = torch.full((1,), 1e-4, dtype=torch.float64)
        optimizer.step()
        expected -= 1e-3 * 1e-4 / np.sqrt(velocity + 1e-7)
        assert weight.item() == pytest.approx(expected, rel=1e-12)
    # torch's rule, eps outside the root, steps about 10 times further here: not Keras's optimizer.
    torch_weight = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    torch_weight.grad = torch.full((1,), 1e-4, dtype=torch.float64)
    torch.optim.RMSprop([torch_weight], lr=1e-3, alpha=0.9, eps=1e-7).step()
    assert abs(torch_weight.item()) > 9 * abs(1e-3 * 1e-4 / np.sqrt(1e-9 + 1e-7))
    assert make_optimizer("rmsprop", [weight], None).__class__ is torch.optim.RMSprop  # torch defaults: torch's rule


def test_steps_override_epochs_and_count_like_the_trainer():
    assert steps_per_epoch(48, 8) == 6 and steps_per_epoch(49, 8) == 6  # the lone 49th image makes no step
    assert steps_per_epoch(50, 8) == 7 and steps_per_epoch(1, 8) == 1
    data = separable()  # 48 images
    by_epochs = train_classifier(tiny_net(), data, TrainParams(epochs=2, batch_size=10, learning_rate=0.05), CPU)
    assert by_epochs.steps == optimizer_steps(48, TrainParams(epochs=2, batch_size=10)) == 10
    # 13 steps of 5 per pass: two full passes and a third of 3 steps.
    by_steps = train_classifier(tiny_net(), data, TrainParams(batch_size=10, learning_rate=0.05, steps=13), CPU)
    assert by_steps.steps == 13 and len(by_steps.epoch_losses) == 3
    with pytest.raises(ValueError, match="steps must be >= 1"):
        TrainParams(steps=0)


def test_training_learns_an_easy_problem_and_is_deterministic():
    data = separable()
    params = TrainParams(epochs=15, batch_size=8, learning_rate=0.05)
    first, second = tiny_net(), tiny_net()
    train_classifier(first, data, params, CPU)
    train_classifier(second, data, params, CPU)
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a, b)
    assert evaluate_classifier(first, separable(seed=1), 2, CPU)["accuracy"] >= 0.9


def test_model_input_scales_resizes_and_keeps_layout():
    batch = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
    x = model_input(batch, CPU, Precision(channels_last=True), size=16)
    assert x.shape == (2, 3, 16, 16) and x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, torch.ones_like(x))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="optimizer 'lbfgs'"):
        TrainParams(optimizer="lbfgs")
    with pytest.raises(ValueError, match="empty training set"):
        train_classifier(
            tiny_net(),
            LabelledImages(torch.zeros((0, 8, 8, 3), dtype=torch.uint8), torch.zeros(0, dtype=torch.long)),
            TrainParams(),
            CPU,
        )


def test_candidate_evaluation_is_reproducible():
    data = separable(size=16)
    search_data = SearchData(data, separable(seed=2), ("dark", "bright"), "v1")
    evaluator = CandidateEvaluator(search_data, TrainParams(epochs=2, batch_size=8), channels=4, searching="cell")
    first, second = evaluator("32-1"), evaluator("32-1")
    assert first["fitness"] == second["fitness"] and 0.0 <= first["fitness"] <= 1.0


def factory_for_tests(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


@pytest.mark.parametrize(
    "architecture, kind",
    [
        ("3501-110-44-1/5-[1]", "searched_cnn"),
        ("resnet18", "torchvision"),
        ("mobilenet_v3_small", "torchvision"),
        ("tests.test_training:factory_for_tests", "factory"),
    ],
)
def test_architecture_choices_build_untrained_models(architecture, kind):
    spec = architecture_spec(architecture, num_classes=3, channels=8)
    assert spec["kind"] == kind
    model = build_architecture(spec).eval()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 3)


def test_searched_architecture_uses_the_search_result():
    spec = architecture_spec("searched", 4, 8, NetworkSpec("32-1", "2-[0]", 8, 4))
    assert (spec["cell"], spec["macro"], spec["num_classes"]) == ("32-1", "2-[0]", 4)


def test_unknown_architectures_are_explained():
    with pytest.raises(ValueError, match="unknown architecture 'resnet9000'"):
        architecture_spec("resnet9000", 3, 8)
    with pytest.raises(ValueError, match="cannot import architecture factory"):
        build_architecture(architecture_spec("no_such_module:make", 3, 8))


def test_local_weights_file_initialises_matching_layers_only(tmp_path):
    from bio_assets.core.cnn.evaluation import load_matching
    from bio_assets.core.io.storage import load_weights_file

    source = build_architecture({"kind": "baseline", "name": "resnet18", "num_classes": 10})
    torch.save(source.state_dict(), tmp_path / "resnet18.pt")
    target = build_architecture({"kind": "baseline", "name": "resnet18", "num_classes": 3})
    skipped = load_matching(target, load_weights_file(tmp_path / "resnet18.pt"))
    assert skipped == ["fc.bias", "fc.weight"]  # the 10-class head does not fit 3 classes
    torch.testing.assert_close(target.conv1.weight, source.conv1.weight)
    with pytest.raises(ValueError, match="does not exist"):
        load_weights_file(tmp_path / "missing.pt")


def test_training_with_dropout_does_not_depend_on_the_global_rng():
    def dropout_net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 2),
        )

    data = separable()
    first, second = dropout_net(), dropout_net()
    torch.manual_seed(123)
    train_classifier(first, data, TrainParams(epochs=2, batch_size=8), CPU)
    torch.rand(1000)  # the global RNG moves on, as other work in the process would
    train_classifier(second, data, TrainParams(epochs=2, batch_size=8), CPU)
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a, b)


def test_fused_optimizer_steps_match_the_per_tensor_loop():
    """make_optimizer's fused Adam/SGD/Adagrad follow the same update rule as torch's loop."""

    for name in ("adam", "sgd", "adagrad"):
        fused, plain = tiny_net(), tiny_net()
        optimizers = [make_optimizer(name, fused.parameters(), 0.01), OPTIMIZERS[name](plain.parameters(), lr=0.01)]
        assert optimizers[0].defaults.get("fused") is True
        for model, optimizer in zip((fused, plain), optimizers):
            for step in range(3):
                x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(step))
                optimizer.zero_grad()
                model(x).square().mean().backward()
                optimizer.step()
        for a, b in zip(fused.parameters(), plain.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_diverging_training_fails_loudly_naming_the_epoch():
    model = tiny_net()
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="at epoch 1"):
        train_classifier(model, separable(), TrainParams(epochs=2, batch_size=8), CPU)


def test_precise_bn_recomputes_running_statistics_over_the_training_images():
    from bio_assets.core.cnn.training import recompute_batch_norm

    images = torch.randint(0, 256, (128, 8, 8, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    norm = nn.BatchNorm2d(3, momentum=0.01)
    model = nn.Sequential(norm, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)).eval()
    assert recompute_batch_norm(model, images, CPU, batch_size=64) == 1
    x = model_input(images, CPU, Precision(), None)  # (128, 3, 8, 8) in [-1, 1]
    torch.testing.assert_close(norm.running_mean, x.mean(dim=(0, 2, 3)))
    # Two equal batches: the average of their unbiased variances.
    batches = x.split(64)
    expected = torch.stack([b.transpose(0, 1).flatten(1).var(dim=1) for b in batches]).mean(0)
    torch.testing.assert_close(norm.running_var, expected)
    assert norm.momentum == 0.01 and not model.training  # restored


def test_precise_bn_lets_a_slow_batch_norm_test_like_it_trained():
    # BatchNorm with MobileNetV3's momentum 0.01: after a few steps its running statistics are
    # still near (0, 1), far from the bright images' statistics, so eval mode mispredicts.
    def bright(seed: int) -> LabelledImages:  # both classes bright: 200 against 235
        generator = torch.Generator().manual_seed(seed)
        labels = torch.arange(48) % 2
        base = torch.where(labels[:, None, None, None] == 1, 235, 200)
        noise = torch.randint(-10, 10, (48, 16, 16, 3), generator=generator)
        return LabelledImages((base + noise).clamp(0, 255).to(torch.uint8), labels)

    data = bright(0)
    for precise in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=0.01), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
        )  # fmt: skip
        params = TrainParams(epochs=3, batch_size=8, learning_rate=0.05, precise_bn=precise)
        train_classifier(model, data, params, CPU)
        accuracy = evaluate_classifier(model, bright(1), 2, CPU)["accuracy"]
        assert (accuracy >= 0.9) if precise else (accuracy <= 0.75), (precise, accuracy)


def test_selection_on_validation_keeps_the_pass_that_scored_best_there():
    data = separable()
    # Validation images with the labels flipped: the more the model learns, the worse it scores
    # there, so the first pass is the best one and its weights are the ones kept.
    flipped = LabelledImages(separable(seed=3).images, 1 - separable(seed=3).labels)
    params = TrainParams(epochs=6, batch_size=8, learning_rate=0.05, select_on_validation=True)
    seen = []
    model = tiny_net()
    report = train_classifier(
        model, data, params, CPU, validation=flipped, on_epoch=lambda epoch, loss, acc: seen.append(epoch)
    )
    assert seen == [1, 2, 3, 4, 5, 6] and report.selected_pass is not None
    kept = evaluate_classifier(model, flipped, 2, CPU)["accuracy"]
    assert kept == pytest.approx(report.selected_val_accuracy)
    last = tiny_net()
    train_classifier(last, data, TrainParams(epochs=6, batch_size=8, learning_rate=0.05), CPU)
    assert kept >= evaluate_classifier(last, flipped, 2, CPU)["accuracy"]
    # The same training without validation images (or with selection off) keeps the last pass.
    plain = train_classifier(tiny_net(), data, params, CPU)
    assert plain.selected_pass is None


def test_fitness_repeats_average_trainings_from_their_own_seeds_and_the_first_is_the_single_one():
    data = separable(size=16)
    search_data = SearchData(data, separable(seed=2), ("dark", "bright"), "v1")
    params = TrainParams(epochs=1, batch_size=8)
    single = CandidateEvaluator(search_data, params, channels=4, searching="cell")("32-1")
    repeated = CandidateEvaluator(search_data, params, channels=4, searching="cell", fitness_repeats=3)("32-1")
    assert repeated["fitness_repeats"] == 3 and single["fitness_repeats"] == 1
    assert repeated["val_loss"] > 0 and np.isfinite(repeated["val_loss"])
    # The mean of three trainings, the first of which is the single one: (single + a + b) / 3.
    others = 3 * repeated["fitness"] - single["fitness"]
    assert 0.0 <= others <= 2.0
