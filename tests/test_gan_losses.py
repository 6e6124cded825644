"""Adversarial losses against hand-computed values on tiny tensors, and DiffAugment's contract."""

from __future__ import annotations

import math

import pytest
import torch

from bio_assets.core.gan.diffaugment import color, diff_augment, translation
from bio_assets.core.gan.losses import (
    BeganLoss,
    BoundarySeekingLoss,
    HingeLoss,
    WassersteinGPLoss,
    WassersteinLoss,
    make_loss,
)

REAL = torch.tensor([2.0, 0.5])
FAKE = torch.tensor([-0.5, 1.5])


def test_hinge_loss_known_values():
    loss = HingeLoss()
    # D: mean(relu(1 - [2, 0.5])) + mean(relu(1 + [-0.5, 1.5])) = (0 + 0.5)/2 + (0.5 + 2.5)/2 = 1.75
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(1.75)
    assert loss.generator(FAKE).item() == pytest.approx(-0.5)


def test_wgan_losses_and_clipping():
    loss = WassersteinLoss(clip=0.1)
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(0.5 - 1.25)
    critic = torch.nn.Linear(2, 1)
    torch.nn.init.constant_(critic.weight, 3.0)
    loss.after_discriminator_step(critic, REAL, FAKE)
    assert critic.weight.abs().max().item() == pytest.approx(0.1)


def test_wgan_gp_penalty_of_a_linear_critic():
    # For D(x) = <w, x> the gradient is w everywhere: penalty = 10 (||w|| - 1)^2 = 10 (5 - 1)^2 = 160.
    w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    penalty = WassersteinGPLoss().penalty(
        lambda x: (x * w).sum(dim=(1, 2, 3)),
        torch.randn(4, 2, 1, 1),
        torch.randn(4, 2, 1, 1),
        torch.Generator().manual_seed(0),
    )
    assert penalty.item() == pytest.approx(160.0)


def test_bgan_generator_loss_is_half_the_squared_logit():
    loss = BoundarySeekingLoss()
    # log D - log(1 - D) is the logit; 0.5 * mean([0.25, 2.25]) = 0.625
    assert loss.generator(FAKE).item() == pytest.approx(0.625)
    d = torch.sigmoid(FAKE)
    assert loss.generator(FAKE).item() == pytest.approx(
        0.5 * ((torch.log(d) - torch.log(1 - d)) ** 2).mean().item(), rel=1e-5
    )
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(
        (-torch.log(torch.sigmoid(REAL))).mean().item() + (-torch.log(1 - torch.sigmoid(FAKE))).mean().item(), rel=1e-5
    )


def test_began_losses_and_equilibrium_update():
    loss = BeganLoss(gamma=0.5, lambda_k=0.1)
    loss.k = 0.2
    real_errors, fake_errors = torch.tensor([0.4, 0.6]), torch.tensor([0.1, 0.3])
    assert loss.discriminator(real_errors, fake_errors).item() == pytest.approx(0.5 - 0.2 * 0.2)
    assert loss.generator(fake_errors).item() == pytest.approx(0.2)
    loss.after_discriminator_step(None, real_errors, fake_errors)
    assert loss.k == pytest.approx(0.2 + 0.1 * (0.5 * 0.5 - 0.2))
    assert loss.convergence(real_errors, fake_errors) == pytest.approx(0.5 + abs(0.25 - 0.2))
    restored = BeganLoss()
    restored.load_state(loss.state())
    assert restored.k == loss.k


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown GAN loss"):
        make_loss("lsgan")


def test_diffaugment_keeps_shape_dtype_device_and_passes_gradients():
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    out = diff_augment(x, ("color", "translation"), torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and math.isfinite(x.grad.sum().item())


def test_diffaugment_is_seeded_and_changes_images():
    x = torch.rand(4, 3, 16, 16)
    a = diff_augment(x, ("color", "translation"), torch.Generator().manual_seed(1))
    b = diff_augment(x, ("color", "translation"), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, x)


def test_translation_moves_pixels_and_fills_zeros():
    x = torch.ones(16, 1, 8, 8)
    shifted = translation(x, torch.Generator().manual_seed(0))
    assert set(shifted.unique().tolist()) <= {0.0, 1.0}
    assert (shifted == 0).any()  # some image moved and showed its zero border


def test_color_shifts_brightness_within_half_a_unit():
    # A grey image has no saturation or contrast to change: only the brightness shift (-0.5..0.5) shows.
    out = color(torch.zeros(64, 3, 4, 4), torch.Generator().manual_seed(0))
    per_image = out.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert per_image.abs().max() <= 0.5 and per_image.std() > 0.1


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="unknown DiffAugment policies"):
        diff_augment(torch.zeros(1, 3, 4, 4), ("cutout",))
