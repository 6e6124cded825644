"""Adversarial training of a (conditional) generator and discriminator on in-memory images.

Hinge loss (or a baseline's own loss), Adam with TTUR learning rates, DiffAugment on every
image the discriminator sees, class-balanced sampling, an EMA generator, autocast where the
``compute`` resource enables it, atomic checkpoints, exact resume, and divergence detection.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bio_assets.core.allocator import reuse_freed_memory
from bio_assets.core.cnn.training import Precision
from bio_assets.core.cpu_share import sharing_cpu
from bio_assets.core.gan.blocks import halves_are_separate, separate_halves
from bio_assets.core.gan.checkpoints import CheckpointState, load_checkpoint, save_checkpoint
from bio_assets.core.gan.diffaugment import POLICIES, diff_augment
from bio_assets.core.gan.losses import LOSSES, make_loss
from bio_assets.core.gan.spectral import normalized_once
from bio_assets.core.seeding import derive_seed

GAN_OPTIMIZERS = ("adam", "rmsprop")


class GanImages(NamedTuple):
    images: torch.Tensor  # uint8 (N, S, S, 3) at the GAN's image size
    labels: torch.Tensor  # int64 (N,)
    num_classes: int


class Batch(NamedTuple):
    images: torch.Tensor  # float (B, 3, S, S) in [-1, 1]
    labels: torch.Tensor  # int64 (B,)


class GanDiverged(RuntimeError):
    """A loss or parameter became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class GanTrainParams:
    iterations: int = 100_000  # generator steps
    batch_size: int = 128
    generator_lr: float = 1e-4
    discriminator_lr: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's; unused by RMSprop
    loss: str = "hinge"
    optimizer: str = "adam"  # or "rmsprop" (WGAN's published optimizer)
    # The generator's class-conditional parameters (conditional BatchNorm gains and biases) learn at
    # this multiple of generator_lr; the source's 1.0 leaves them nearly still in a short run.
    conditioning_lr_multiplier: float = 1.0
    # > 0: the discriminator's class head learns the real images' classes and the generator is
    # pushed to make its images classified as their label, this weight times cross-entropy (AC-GAN).
    auxiliary_classifier_weight: float = 0.0
    critic_steps: int = 0  # discriminator steps per generator step; 0: the loss's own default
    diffaugment: tuple[str, ...] = POLICIES
    ema_decay: float = 0.999  # 0: no EMA generator
    checkpoint_every: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.auxiliary_classifier_weight < 0:
            raise ValueError(f"auxiliary_classifier_weight must be >= 0, got {self.auxiliary_classifier_weight}")
        if self.conditioning_lr_multiplier <= 0:
            raise ValueError(f"conditioning_lr_multiplier must be > 0, got {self.conditioning_lr_multiplier}")
        if self.optimizer not in GAN_OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {GAN_OPTIMIZERS}, got {self.optimizer!r}")
        if self.iterations < 1 or self.batch_size < 2 or self.checkpoint_every < 1 or self.critic_steps < 0:
            raise ValueError(
                f"need iterations >= 1, batch_size >= 2, checkpoint_every >= 1, critic_steps >= 0; got {self}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass(frozen=True)
class GanRecipe:
    """How a pair trains, apart from its budget: loss, optimizer and rates, DiffAugment and EMA.
    The default is the source's GA-GAN recipe (hinge, Adam TTUR 1e-4 / 4e-4, betas (0.5, 0.999))."""

    loss: str = "hinge"
    optimizer: str = "adam"
    generator_lr: float = 1e-4
    discriminator_lr: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.999)
    diffaugment: tuple[str, ...] = POLICIES
    ema_decay: float = 0.999
    conditioning_lr_multiplier: float = 1.0
    auxiliary_classifier_weight: float = 0.0

    def params(self, *, iterations: int, batch_size: int, checkpoint_every: int, seed: int) -> GanTrainParams:
        return GanTrainParams(
            iterations=iterations,
            batch_size=batch_size,
            checkpoint_every=checkpoint_every,
            seed=seed,
            **asdict(self),
        )


@dataclass
class GanTrainReport:
    iterations: int
    resumed_from_step: int
    seconds: float
    iterations_per_second: float
    sampler: nn.Module  # the EMA generator, or the generator itself when EMA is off
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, evaluation) pairs
    final_losses: dict[str, float] = field(default_factory=dict)


def to_model_range(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> float (B, 3, S, S) in [-1, 1]."""
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float (B, 3, S, S) in [-1, 1] -> uint8 (B, S, S, 3) on the CPU, as a PNG would store it."""
    return (
        ((images.detach().float().clamp(-1, 1) + 1) * 127.5)
        .round()
        .to(torch.uint8)
        .permute(0, 2, 3, 1)
        .cpu()
        .contiguous()
    )


@torch.no_grad()
def generate(
    generator: nn.Module, labels: torch.Tensor, noise: torch.Generator, device: torch.device, batch_size: int = 256
) -> torch.Tensor:
    """uint8 images (N, S, S, 3) for ``labels`` (N,), in eval mode, from seeded noise."""
    was_training = generator.training
    generator.eval()
    outputs = []
    for start in range(0, len(labels), batch_size):
        y = labels[start : start + batch_size].to(device)
        z = torch.randn(len(y), generator.noise_dim, generator=noise, device=device)
        outputs.append(to_uint8(generator(z, y)))
    generator.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, dtype=torch.uint8)


def balanced_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Sampling weight 1 / (images of its class) per image, so each class is drawn equally often."""
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).double()
    return 1.0 / counts[labels]


def ema_decay_at(decay: float, step: int) -> float:
    """``min(decay, (1 + step) / (10 + step))``: the EMA warms up (as TensorFlow's
    ExponentialMovingAverage with num_updates does), so a short run's EMA generator is not
    mostly its random initialisation (0.999^300 would still weigh the init by 0.74)."""
    return min(decay, (1.0 + step) / (10.0 + step))


def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """One multi-tensor lerp over every parameter and one copy over every buffer (a per-tensor
    loop costs a dispatch per tensor: ~15% of a demo-sized GAN step)."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)
        torch._foreach_copy_(list(ema.buffers()), list(model.buffers()))


@contextmanager
def _frozen(network: nn.Module) -> Iterator[None]:
    """``network``'s parameters without gradients inside: the generator step backpropagates through the
    discriminator to the generator only, so the discriminator's weight gradients (discarded by its
    next step) and its spectral norms' backward are not computed (8% of a demo-sized step)."""
    parameters = [p for p in network.parameters() if p.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def _all_finite(*modules: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for m in modules for p in m.parameters())


def _optimizer(
    params: GanTrainParams, network: nn.Module, lr: float, device: torch.device, *, conditioning_lr: float | None = None
) -> torch.optim.Optimizer:
    """Fused Adam (one kernel over all parameters, the per-tensor loop's update rule), or RMSprop.
    With ``conditioning_lr``, the network's ``conditioning_parameters()`` form a group of their own."""
    groups: list[dict] = [{"params": list(network.parameters())}]
    if conditioning_lr is not None and conditioning_lr != lr and hasattr(network, "conditioning_parameters"):
        conditioning = list(network.conditioning_parameters())
        chosen = {id(p) for p in conditioning}
        groups = [{"params": [p for p in groups[0]["params"] if id(p) not in chosen]}]
        groups.append({"params": conditioning, "lr": conditioning_lr})
    if params.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, foreach=True)
    return torch.optim.Adam(groups, lr=lr, betas=params.betas, fused=device.type in ("cpu", "cuda"))


class _Trainer:
    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        data: GanImages,
        params: GanTrainParams,
        *,
        device: torch.device,
        precision: Precision,
    ) -> None:
        self.G, self.D, self.data, self.params, self.device, self.precision = (
            generator.to(device),
            discriminator.to(device),
            data,
            params,
            device,
            precision,
        )
        if precision.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.loss = make_loss(params.loss)
        self.one_pass_critic = halves_are_separate(self.D)
        self.critic_steps = params.critic_steps or self.loss.critic_steps
        self.opt_g = _optimizer(
            params,
            self.G,
            params.generator_lr,
            device,
            conditioning_lr=params.generator_lr * params.conditioning_lr_multiplier,
        )
        self.opt_d = _optimizer(params, self.D, params.discriminator_lr, device)
        self.ema = copy.deepcopy(self.G).eval() if params.ema_decay > 0 else None
        self.rng = {
            "data": torch.Generator().manual_seed(derive_seed(params.seed, "gan-data")),
            "noise": torch.Generator(device).manual_seed(derive_seed(params.seed, "gan-noise")),
            "augment": torch.Generator(device).manual_seed(derive_seed(params.seed, "gan-augment")),
        }
        self.weights = balanced_weights(data.labels, data.num_classes)
        fp16 = precision.autocast_dtype == torch.float16
        self.scalers = {
            name: torch.amp.GradScaler(device.type, enabled=fp16) for name in ("generator", "discriminator")
        }

    def autocast(self):
        dtype = self.precision.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def real_batch(self) -> Batch:
        rows = torch.multinomial(self.weights, self.params.batch_size, replacement=True, generator=self.rng["data"])
        return Batch(to_model_range(self.data.images[rows], self.device), self.data.labels[rows].to(self.device))

    def fake_batch(self) -> Batch:
        b = self.params.batch_size
        labels = torch.randint(0, self.data.num_classes, (b,), generator=self.rng["noise"], device=self.device)
        z = torch.randn(b, self.G.noise_dim, generator=self.rng["noise"], device=self.device)
        with self.autocast():
            return Batch(self.G(z, labels), labels)

    def critic(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        augmented = diff_augment(images, self.params.diffaugment, self.rng["augment"])
        with self.autocast():
            return self.D(augmented, labels).float()

    def critic_and_classes(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B,) and, from the discriminator's class head, the auxiliary cross-entropy against ``labels``."""
        augmented = diff_augment(images, self.params.diffaugment, self.rng["augment"])
        with self.autocast():
            scores, logits = self.D(augmented, labels, class_logits=True)
        return scores.float(), F.cross_entropy(logits.float(), labels)

    def real_and_fake_scores(
        self, real: Batch, fake: Batch, *, auxiliary: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The discriminator's scores (B,) of a real and a fake batch and, with ``auxiliary``, its class
        head's cross-entropy on the real one (the head learns from real images only, so it never learns
        the generator's mistakes). One pass over both batches where the discriminator's batch
        statistics keep the halves apart (``halves_are_separate``), else a pass per batch; each batch
        is augmented on its own either way, so both draw the same augmentations."""
        if not self.one_pass_critic:
            if auxiliary:
                real_scores, class_loss = self.critic_and_classes(*real)
            else:
                real_scores, class_loss = self.critic(*real), None
            return real_scores, self.critic(*fake), class_loss
        b = len(real.labels)
        policy, generator = self.params.diffaugment, self.rng["augment"]
        images = torch.cat([diff_augment(real.images, policy, generator), diff_augment(fake.images, policy, generator)])
        labels = torch.cat([real.labels, fake.labels])
        with self.autocast(), separate_halves():
            output = self.D(images, labels, class_logits=True) if auxiliary else self.D(images, labels)
        scores, logits = output if auxiliary else (output, None)
        real_scores, fake_scores = scores.float().split(b)
        class_loss = F.cross_entropy(logits[:b].float(), real.labels) if logits is not None else None
        return real_scores, fake_scores, class_loss

    def critic_loss(self, step: int, auxiliary: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The discriminator's loss on one real and one fake batch, and its scores (B,) of each."""
        real = self.real_batch()
        with torch.no_grad():
            fake = self.fake_batch()
        fake = Batch(fake.images.float(), fake.labels)
        real_scores, fake_scores, class_loss = self.real_and_fake_scores(real, fake, auxiliary=bool(auxiliary))
        loss_d = self.loss.discriminator(real_scores, fake_scores)
        if class_loss is not None:
            loss_d = loss_d + auxiliary * class_loss
        penalty = self.loss.penalty(
            lambda x, labels=real.labels: self.D(x, labels).float(), real.images, fake.images, self.rng["augment"]
        )
        if penalty is not None:
            loss_d = loss_d + penalty
        self._check(loss_d, "discriminator loss", step)
        return loss_d, real_scores, fake_scores

    def step(self, step: int) -> dict[str, float]:
        auxiliary = self.params.auxiliary_classifier_weight
        # Each network's spectrally normalised weights are computed once per change of its weights,
        # all layers together (one power iteration each): the generator's for the whole iteration,
        # the discriminator's per critic step and again, frozen, for the generator step.
        with normalized_once(self.G):
            for _ in range(self.critic_steps):
                with normalized_once(self.D):
                    loss_d, real_scores, fake_scores = self.critic_loss(step, auxiliary)
                self._apply(loss_d, self.opt_d, "discriminator")
                self.loss.after_discriminator_step(self.D, real_scores.detach(), fake_scores.detach())
            loss_g = self.generator_loss(step, auxiliary)
            self._apply(loss_g, self.opt_g, "generator")
        if self.ema is not None:
            _update_ema(self.ema, self.G, ema_decay_at(self.params.ema_decay, step))
        return {"discriminator": float(loss_d.detach()), "generator": float(loss_g.detach())}

    def generator_loss(self, step: int, auxiliary: float) -> torch.Tensor:
        """The generator's loss on a fresh fake batch. The discriminator is frozen: its next step
        discards its weight gradients, so its backward computes only what reaches the generator."""
        fake = self.fake_batch()
        with _frozen(self.D), normalized_once(self.D):
            if auxiliary:
                fake_scores, fake_class_loss = self.critic_and_classes(fake.images.float(), fake.labels)
                loss_g = self.loss.generator(fake_scores) + auxiliary * fake_class_loss
            else:
                loss_g = self.loss.generator(self.critic(fake.images.float(), fake.labels))
        self._check(loss_g, "generator loss", step)
        return loss_g

    def _apply(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler = self.scalers[name]
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def _check(self, loss: torch.Tensor, what: str, step: int) -> None:
        if not torch.isfinite(loss):
            raise GanDiverged(f"diverged at step {step}: {what} is {float(loss.detach())}")

    def state(self, step: int, header: dict) -> CheckpointState:
        modules = {"generator": self.G.state_dict(), "discriminator": self.D.state_dict()}
        if self.ema is not None:
            modules["ema"] = self.ema.state_dict()
        rng = {name: generator.get_state() for name, generator in self.rng.items()}
        optimizers = {"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()}
        return CheckpointState(step, modules, optimizers, rng, {**header, "loss_state": self.loss.state()})

    def restore(self, checkpoint: CheckpointState) -> None:
        self.G.load_state_dict(checkpoint.modules["generator"])
        self.D.load_state_dict(checkpoint.modules["discriminator"])
        if self.ema is not None:
            self.ema.load_state_dict(checkpoint.modules["ema"])
        self.opt_g.load_state_dict(checkpoint.optimizers["generator"])
        self.opt_d.load_state_dict(checkpoint.optimizers["discriminator"])
        for name, generator in self.rng.items():
            generator.set_state(checkpoint.rng[name])
        self.loss.load_state(checkpoint.header.get("loss_state", {}))


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data: GanImages,
    params: GanTrainParams,
    *,
    device: torch.device,
    precision: Precision = Precision(),
    checkpoint_path: Path | None = None,
    identity: dict | None = None,
    evaluate: Callable[[nn.Module], float] | None = None,
    evaluate_every: int = 0,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> GanTrainReport:
    """Train in place for ``params.iterations`` generator steps; returns the report.

    With ``checkpoint_path``, a checkpoint is written every ``checkpoint_every`` steps and at
    the end, and an existing one is resumed when it was made with the same ``params`` and
    ``identity`` (JSON: the network specs). ``evaluate(model)`` scores the EMA generator (or
    the generator) every ``evaluate_every`` steps and at the end, e.g. by FID.
    Non-finite losses or parameters raise ``GanDiverged`` naming the step.
    """
    if len(data.labels) == 0:
        raise ValueError("cannot train a GAN on an empty image set")
    reuse_freed_memory()
    trainer = _Trainer(generator, discriminator, data, params, device=device, precision=precision)
    header = {"params": json.loads(json.dumps(asdict(params))), "identity": identity or {}}
    start, curve = 0, []
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        checkpoint = load_checkpoint(Path(checkpoint_path))
        if (
            checkpoint.header.get("params") != header["params"]
            or checkpoint.header.get("identity") != header["identity"]
        ):
            raise ValueError(
                f"checkpoint {checkpoint_path} was made with other settings or networks; delete it or use another path"
            )
        trainer.restore(checkpoint)
        start, curve = checkpoint.step, [tuple(p) for p in checkpoint.header.get("curve", [])]
    resumed_from = start
    scored = trainer.ema if trainer.ema is not None else trainer.G
    started = time.perf_counter()
    losses: dict[str, float] = {}
    with torch.random.fork_rng(devices=[]), sharing_cpu(device) as cores:
        torch.manual_seed(derive_seed(params.seed, "gan-global"))  # in-model randomness, if any
        trainer.G.train()
        trainer.D.train()
        for step in range(start + 1, params.iterations + 1):
            cores.poll()
            losses = trainer.step(step)
            if on_step is not None:
                on_step(step, losses)
            if evaluate is not None and evaluate_every and (step % evaluate_every == 0 or step == params.iterations):
                curve.append((step, float(evaluate(scored))))
            if checkpoint_path is not None and (step % params.checkpoint_every == 0 or step == params.iterations):
                if not _all_finite(trainer.G, trainer.D):
                    raise GanDiverged(
                        f"diverged at step {step}: a parameter is not finite; the last good checkpoint at "
                        f"{checkpoint_path} is kept"
                    )
                save_checkpoint(Path(checkpoint_path), trainer.state(step, {**header, "curve": curve}))
    if not _all_finite(trainer.G, trainer.D):
        raise GanDiverged(f"diverged at step {params.iterations}: a parameter is not finite")
    if evaluate is not None and not evaluate_every:
        curve.append((params.iterations, float(evaluate(scored))))
    seconds = time.perf_counter() - started
    done = params.iterations - resumed_from
    return GanTrainReport(
        params.iterations, resumed_from, seconds, done / seconds if seconds > 0 else 0.0, scored, curve, losses
    )
