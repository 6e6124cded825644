"""Adversarial losses on discriminator outputs. Each loss maps scores to scalars:
``discriminator(real, fake)`` and ``generator(fake)``; ``penalty`` adds a term that needs
the discriminator itself (WGAN-GP); ``after_discriminator_step`` updates loss state or
weights (BEGAN's k, WGAN's clipping). Scores are ``(B,)`` float tensors."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class AdversarialLoss:
    name = ""
    critic_steps = 1  # discriminator steps per generator step

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def penalty(
        self,
        critic: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor | None:
        return None

    def after_discriminator_step(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> None:
        """Called with the step's scores (detached)."""

    def state(self) -> dict[str, float]:
        return {}

    def load_state(self, state: dict[str, float]) -> None:
        """Restore what ``state`` returned (resume from a checkpoint)."""


class HingeLoss(AdversarialLoss):
    """D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))];  G: -E[D(G(z))]."""

    name = "hinge"

    def discriminator(self, real, fake):
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def generator(self, fake):
        return -fake.mean()


class BCELoss(AdversarialLoss):
    """DCGAN: D: -E[log s(D(x))] - E[log(1 - s(D(G(z))))];  G (non-saturating): -E[log s(D(G(z)))]."""

    name = "bce"

    def discriminator(self, real, fake):
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def generator(self, fake):
        return F.softplus(-fake).mean()


class WassersteinLoss(AdversarialLoss):
    """WGAN: D: E[D(G(z))] - E[D(x)];  G: -E[D(G(z))]; the critic's weights are clipped to +-clip."""

    name = "wgan"
    critic_steps = 5

    def __init__(self, clip: float = 0.01) -> None:
        self.clip = clip

    def discriminator(self, real, fake):
        return fake.mean() - real.mean()

    def generator(self, fake):
        return -fake.mean()

    def after_discriminator_step(self, discriminator, real, fake):
        with torch.no_grad():
            for parameter in discriminator.parameters():
                parameter.clamp_(-self.clip, self.clip)


class WassersteinGPLoss(WassersteinLoss):
    """WGAN-GP: the WGAN losses plus weight * E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates."""

    name = "wgan_gp"

    def __init__(self, weight: float = 10.0) -> None:
        self.weight = weight

    def after_discriminator_step(self, discriminator, real, fake):
        """No clipping: the penalty keeps the critic Lipschitz."""

    def penalty(self, critic, real, fake, generator):
        alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=real.device, dtype=real.dtype)
        mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
        (gradients,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        return self.weight * ((gradients.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


class BoundarySeekingLoss(BCELoss):
    """BGAN: D as DCGAN; G: 0.5 * E[(log D(G(z)) - log(1 - D(G(z))))^2] = 0.5 * E[logit^2]."""

    name = "bgan"

    def generator(self, fake):
        return 0.5 * (fake**2).mean()


class BeganLoss(AdversarialLoss):
    """BEGAN: scores are autoencoder reconstruction errors L. D: E[L(x)] - k E[L(G(z))];
    G: E[L(G(z))]; then k <- clip(k + lambda_k (gamma E[L(x)] - E[L(G(z))]), 0, 1)."""

    name = "began"

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001) -> None:
        self.gamma, self.lambda_k, self.k = gamma, lambda_k, 0.0

    def discriminator(self, real, fake):
        return real.mean() - self.k * fake.mean()

    def generator(self, fake):
        return fake.mean()

    def after_discriminator_step(self, discriminator, real, fake):
        balance = self.gamma * float(real.mean()) - float(fake.mean())
        self.k = min(max(self.k + self.lambda_k * balance, 0.0), 1.0)

    def convergence(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """BEGAN's global convergence measure M = E[L(x)] + |gamma E[L(x)] - E[L(G(z))]|."""
        return float(real.mean()) + abs(self.gamma * float(real.mean()) - float(fake.mean()))

    def state(self):
        return {"k": self.k}

    def load_state(self, state):
        self.k = float(state.get("k", 0.0))


LOSSES: dict[str, type[AdversarialLoss]] = {
    cls.name: cls for cls in (HingeLoss, BCELoss, WassersteinLoss, WassersteinGPLoss, BoundarySeekingLoss, BeganLoss)
}


def make_loss(name: str) -> AdversarialLoss:
    if name not in LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; known: {sorted(LOSSES)}")
    return LOSSES[name]()
