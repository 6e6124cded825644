"""Training and evaluating classifiers on in-memory uint8 images.

Images stay uint8 ``(N, H, W, 3)`` tensors; each batch is converted on the device to
float ``(B, 3, H, W)`` in [-1, 1] (resized when the model wants another input size), so
no image is decoded per candidate or epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bio_assets.core.allocator import reuse_freed_memory
from bio_assets.core.cnn.optimizers import LIBRARY_DEFAULTS, OPTIMIZERS, make_optimizer
from bio_assets.core.cpu_share import sharing_cpu
from bio_assets.core.metrics.classification import accuracy, confusion_matrix, macro_f1


class LabelledImages(NamedTuple):
    images: torch.Tensor  # uint8 (N, H, W, 3)
    labels: torch.Tensor  # int64 (N,)


@dataclass(frozen=True)
class Precision:
    """How the device computes: chosen by the ``compute`` resource, not here."""

    channels_last: bool = False
    autocast_dtype: torch.dtype | None = None  # torch.bfloat16 on CPUs with bf16 units, float16 on CUDA


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float | None = 1e-3  # None: the optimizer's library default
    input_size: int | None = None  # resize batches to this size (baselines' native inputs)
    seed: int = 0
    defaults: str = "torch"  # the optimizer's other hyper-parameters: "torch" or "keras" (KERAS_DEFAULTS)
    # After training, recompute every BatchNorm's running statistics over the training images
    # ("precise BN"). A short training leaves slow running averages (torchvision's MobileNetV3:
    # momentum 0.01) near their start, and the model then tests at chance in eval mode.
    precise_bn: bool = False
    # Exactly this many optimizer steps, over as many shuffled passes as they take (the last one
    # partial), instead of ``epochs`` passes: a control trained on fewer images makes as many
    # updates as the model it is compared with.
    steps: int | None = None
    # After every pass, score the validation images and keep the weights of the pass with the
    # highest validation accuracy (ties: the lower validation loss): early stopping without a
    # stopping rule, so small training sets neither under- nor over-train whatever their size.
    # The test split never takes part; a training without validation images ignores it.
    select_on_validation: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {sorted(OPTIMIZERS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1 (None: epochs decide), got {self.steps}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.defaults not in LIBRARY_DEFAULTS:
            raise ValueError(f"defaults must be one of {LIBRARY_DEFAULTS}, got {self.defaults!r}")


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Optimizer steps in one pass over ``num_images``: one per batch, except a last batch of one
    image (BatchNorm cannot train on it) after at least one full batch."""
    if num_images < 1 or batch_size < 1:
        raise ValueError(f"need num_images >= 1 and batch_size >= 1, got {num_images}, {batch_size}")
    batches = math.ceil(num_images / batch_size)
    return batches - 1 if num_images > 1 and num_images % batch_size == 1 else batches


def optimizer_steps(num_images: int, params: TrainParams) -> int:
    """How many optimizer steps ``params`` makes on ``num_images`` training images."""
    return params.steps if params.steps is not None else params.epochs * steps_per_epoch(num_images, params.batch_size)


def model_input(batch: torch.Tensor, device: torch.device, precision: Precision, size: int | None) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, S, S)`` in [-1, 1] on ``device``."""
    x = batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
    return x.contiguous(memory_format=torch.channels_last) if precision.channels_last else x


def _autocast(device: torch.device, precision: Precision):
    return torch.autocast(device.type, dtype=precision.autocast_dtype, enabled=precision.autocast_dtype is not None)


@dataclass
class TrainReport:
    epoch_losses: list[float]  # per pass (the last one partial when ``steps`` ends inside it)
    epoch_accuracies: list[float]
    seconds: float
    images_per_second: float
    steps: int = 0  # optimizer steps made
    selected_pass: int | None = None  # the pass whose weights were kept (select_on_validation), 1-based
    selected_val_accuracy: float | None = None


def train_classifier(
    model: nn.Module,
    train: LabelledImages,
    params: TrainParams,
    device: torch.device,
    *,
    precision: Precision = Precision(),
    on_epoch: Callable[[int, float, float], None] | None = None,
    validation: LabelledImages | None = None,
) -> TrainReport:
    """Cross-entropy training with shuffled mini-batches drawn from a seeded generator.

    Dropout and other in-model randomness draw from torch's global RNG: it is forked and
    seeded from ``params.seed`` here, so a training does not depend on what ran before it.
    With ``params.select_on_validation`` and ``validation`` images, the weights end as those of
    the pass that scored best on them (see ``TrainParams``).
    """
    if len(train.labels) == 0:
        raise ValueError("cannot train on an empty training set")
    selector = None
    if params.select_on_validation and validation is not None and len(validation.labels):
        selector = _PassSelector(validation, device, precision=precision, params=params, train_images=train.images)
    reuse_freed_memory()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed)
        report = _train(model, train, params, device, precision=precision, on_epoch=on_epoch, selector=selector)
        if selector is not None:
            report.selected_pass, report.selected_val_accuracy = selector.restore_best(model)
        if params.precise_bn:
            recompute_batch_norm(model, train.images, device, precision=precision, input_size=params.input_size)
        return report


class _PassSelector:
    """Scores the model on validation images after each pass and remembers the best pass's weights."""

    def __init__(self, validation: LabelledImages, device: torch.device, *, precision, params, train_images) -> None:
        self.validation, self.device, self.precision, self.params = validation, device, precision, params
        self.train_images = train_images
        self.best: tuple[float, float] | None = None  # (accuracy, -loss)
        self.best_pass, self.best_state = 0, None

    def score(self, model: nn.Module, pass_number: int) -> None:
        if self.params.precise_bn:  # score with the statistics the kept weights would get
            recompute_batch_norm(
                model, self.train_images, self.device, precision=self.precision, input_size=self.params.input_size
            )
        probabilities = predict_probabilities(
            model, self.validation.images, self.device, precision=self.precision, input_size=self.params.input_size
        )  # (V, K)
        labels = self.validation.labels.numpy()
        picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
        key = (accuracy(labels, probabilities.argmax(1)), float(np.mean(np.log(picked))))
        if self.best is None or key > self.best:
            self.best, self.best_pass = key, pass_number
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore_best(self, model: nn.Module) -> tuple[int, float]:
        model.load_state_dict(self.best_state)
        return self.best_pass, self.best[0]


@torch.no_grad()
def recompute_batch_norm(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    *,
    precision: Precision = Precision(),
    input_size: int | None = None,
    batch_size: int = 64,
) -> int:
    """Every BatchNorm's running mean and variance recomputed as the plain average over ``images``
    (uint8 ``(N, H, W, 3)``) in train mode, weights untouched; returns the number of layers reset."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over every batch seen
    was_training = model.training
    model.train()
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        if len(batch) < 2:
            continue  # BatchNorm cannot use a batch of one
        with _autocast(device, precision):
            model(model_input(batch, device, precision, input_size))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)
    return len(norms)


def _train(
    model: nn.Module,
    train: LabelledImages,
    params: TrainParams,
    device: torch.device,
    *,
    precision: Precision,
    on_epoch,
    selector: _PassSelector | None = None,
) -> TrainReport:
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(params.optimizer, model.parameters(), params.learning_rate, defaults=params.defaults)
    # fp16 (CUDA) gradients underflow without loss scaling; bf16 and fp32 need none.
    scaler = torch.amp.GradScaler(device.type, enabled=precision.autocast_dtype == torch.float16)
    generator = torch.Generator().manual_seed(params.seed)
    losses, accuracies = [], []
    total_steps, steps, seen = optimizer_steps(len(train.labels), params), 0, 0
    started = time.perf_counter()
    with sharing_cpu(device) as cores:
        epoch = 0
        while steps < total_steps:
            model.train()
            order = torch.randperm(len(train.labels), generator=generator)
            # Summed on the device and read once per epoch: no host sync per batch on a GPU.
            total_loss = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.long, device=device)
            epoch_images = 0
            for start in range(0, len(order), params.batch_size):
                rows = order[start : start + params.batch_size]
                if len(rows) < 2 and len(order) > 1:
                    continue  # BatchNorm cannot train on a batch of one
                if steps == total_steps:
                    break
                cores.poll()
                x = model_input(train.images[rows], device, precision, params.input_size)
                y = train.labels[rows].to(device)
                with _autocast(device, precision):
                    logits = model(x)
                    loss = F.cross_entropy(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                total_loss += loss.detach() * len(rows)
                correct += (logits.argmax(1) == y).sum()
                steps, epoch_images = steps + 1, epoch_images + len(rows)
            epoch += 1
            epoch_loss = total_loss.item() / epoch_images
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(f"loss became {epoch_loss} at epoch {epoch}")
            losses.append(epoch_loss)
            accuracies.append(correct.item() / epoch_images)
            seen += epoch_images
            if on_epoch is not None:
                on_epoch(epoch, losses[-1], accuracies[-1])
            if selector is not None:
                selector.score(model, epoch)
    seconds = time.perf_counter() - started
    return TrainReport(losses, accuracies, seconds, seen / seconds, steps)


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    *,
    precision: Precision = Precision(),
    input_size: int | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Softmax probabilities ``(N, K)`` as float64 numpy."""
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        with _autocast(device, precision):
            logits = model(model_input(images[start : start + batch_size], device, precision, input_size))
        outputs.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(outputs).double().numpy()


def evaluate_classifier(
    model: nn.Module,
    data: LabelledImages,
    num_classes: int,
    device: torch.device,
    *,
    precision: Precision = Precision(),
    input_size: int | None = None,
) -> dict:
    """Accuracy, macro F1, confusion matrix and probabilities on ``data``."""
    probabilities = predict_probabilities(model, data.images, device, precision=precision, input_size=input_size)
    labels = data.labels.numpy()
    predictions = probabilities.argmax(1)
    return {
        "accuracy": accuracy(labels, predictions),
        "macro_f1": macro_f1(labels, predictions, num_classes),
        "confusion": confusion_matrix(labels, predictions, num_classes),
        "probabilities": probabilities,
    }
