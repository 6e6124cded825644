"""GAN training: it learns, it stops loudly on divergence keeping the last good checkpoint,
and a killed training resumes exactly from its checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bio_assets.core.data.demo_data import DEMO_CLASSES, render_cell_image
from bio_assets.core.gan.checkpoints import load_checkpoint
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.scoring import FidScorer
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanDiverged, GanImages, GanTrainParams, train_gan
from bio_assets.core.metrics.extractors import FeatureExtractor

CPU = torch.device("cpu")
GENERATOR = "{3, 26-6, []}"
DISCRIMINATOR = "{3, 26-6, []}"


@pytest.fixture(scope="module")
def demo_images() -> GanImages:
    """Two demo classes, 24 images each, 32x32."""
    rng = np.random.default_rng(0)
    images = [render_cell_image(name, rng, 32) for name in DEMO_CLASSES[:2] for _ in range(24)]
    return GanImages(torch.from_numpy(np.stack(images)), torch.arange(48) // 24, 2)


def pair(seed: int = 0):
    g = build_seeded_gan(GanNetworkSpec("generator", GENERATOR, 16, 32, 2, noise_dim=32), seed)
    d = build_seeded_gan(GanNetworkSpec("discriminator", DISCRIMINATOR, 8, 32, 2), seed + 1)
    return g, d


@pytest.mark.slow(seconds=12)
def test_training_lowers_fid_against_the_initialization(demo_images):
    # Features: the image averaged down to 4x4 pixels (48 values), so FID measures colour and layout.
    extractor = FeatureExtractor("pixels_4x4", 32, lambda x: F.avg_pool2d(x, 8).flatten(1), CPU)
    scorer = FidScorer.against(extractor, demo_images.images, 48, 2, seed=0)
    g, d = pair()
    before = scorer(g).value
    params = GanTrainParams(iterations=150, batch_size=16, ema_decay=0.0, seed=0)
    report = train_gan(g, d, demo_images, params, device=CPU)
    after = scorer(report.sampler).value
    assert after < 0.7 * before, (before, after)


def test_nan_at_step_k_raises_diverged_and_keeps_the_last_good_checkpoint(tmp_path, demo_images):
    g, d = pair()
    checkpoint = tmp_path / "gan.safetensors"

    def poison(step: int, losses: dict) -> None:
        if step == 7:
            with torch.no_grad():
                next(g.parameters()).fill_(float("nan"))

    params = GanTrainParams(iterations=20, batch_size=8, checkpoint_every=3, seed=0)
    with pytest.raises(GanDiverged, match=r"diverged at step (8|9)"):
        train_gan(g, d, demo_images, params, device=CPU, checkpoint_path=checkpoint, on_step=poison)
    saved = load_checkpoint(checkpoint)
    assert saved.step == 6
    assert all(torch.isfinite(t).all() for t in saved.modules["generator"].values())


class Killed(Exception):
    pass


def test_killed_training_resumes_exactly_from_its_checkpoint(tmp_path, demo_images):
    params = GanTrainParams(iterations=10, batch_size=8, checkpoint_every=4, seed=3)
    identity = {"generator": GENERATOR, "discriminator": DISCRIMINATOR}
    g, d = pair()
    uninterrupted = train_gan(
        g, d, demo_images, params, device=CPU, checkpoint_path=tmp_path / "a.safetensors", identity=identity
    )

    def kill(step: int, losses: dict) -> None:
        if step == 6:
            raise Killed()

    g, d = pair()
    with pytest.raises(Killed):
        train_gan(
            g,
            d,
            demo_images,
            params,
            device=CPU,
            checkpoint_path=tmp_path / "b.safetensors",
            identity=identity,
            on_step=kill,
        )
    assert load_checkpoint(tmp_path / "b.safetensors").step == 4
    g, d = pair(seed=99)  # fresh process, other init: everything must come from the checkpoint
    resumed = train_gan(
        g, d, demo_images, params, device=CPU, checkpoint_path=tmp_path / "b.safetensors", identity=identity
    )
    assert resumed.resumed_from_step == 4 and resumed.iterations == 10
    for (name, a), b in zip(uninterrupted.sampler.state_dict().items(), resumed.sampler.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="other settings or networks"):
        train_gan(
            *pair(),
            demo_images,
            GanTrainParams(iterations=12, batch_size=8, checkpoint_every=4, seed=3),
            device=CPU,
            checkpoint_path=tmp_path / "b.safetensors",
            identity=identity,
        )


def test_bad_settings_fail_loudly(demo_images):
    with pytest.raises(ValueError, match="loss must be one of"):
        GanTrainParams(loss="lsgan")
    with pytest.raises(ValueError, match="ema_decay"):
        GanTrainParams(ema_decay=1.0)
    with pytest.raises(ValueError, match="empty image set"):
        train_gan(
            *pair(),
            GanImages(torch.zeros(0, 32, 32, 3, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), 2),
            GanTrainParams(iterations=1, batch_size=2),
            device=CPU,
        )


def test_ema_warms_up_then_uses_the_configured_decay():
    from bio_assets.core.gan.training import ema_decay_at

    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 90) == pytest.approx(0.91)
    assert ema_decay_at(0.999, 100_000) == 0.999


@pytest.mark.parametrize(
    ("name", "optimizer", "lr", "betas"),
    [("wgan", "rmsprop", 5e-5, None), ("wgan_gp", "adam", 1e-4, (0.0, 0.9)), ("dcgan", "adam", 2e-4, (0.5, 0.999))],
)
def test_baselines_train_with_their_papers_optimizers(tmp_path, demo_images, name, optimizer, lr, betas):
    # The source trained each baseline with its authors' settings: WGAN RMSprop 5e-5, WGAN-GP
    # Adam 1e-4 with betas (0, 0.9), DCGAN Adam 2e-4 with betas (0.5, 0.999).
    from bio_assets.core.gan.baselines import GAN_BASELINES, BaselineSpec, build_baseline

    recipe = GAN_BASELINES[name].recipe
    assert recipe.diffaugment == () and recipe.ema_decay == 0.0
    params = recipe.params(iterations=1, batch_size=8, checkpoint_every=1, seed=0)
    g, d = build_baseline(BaselineSpec(name, 32, 32, 8))
    train_gan(g, d, demo_images, params, device=CPU, checkpoint_path=tmp_path / "c.safetensors")
    saved = load_checkpoint(tmp_path / "c.safetensors").optimizers
    for role in ("generator", "discriminator"):
        group = saved[role]["param_groups"][0]
        assert group["lr"] == lr
        if optimizer == "rmsprop":
            assert "alpha" in group and "betas" not in group
        else:
            assert tuple(group["betas"]) == betas
    with pytest.raises(ValueError, match="optimizer must be one of"):
        GanTrainParams(optimizer="sgd")


def test_class_parameters_learn_at_their_own_rate(tmp_path, demo_images):
    # The conditional BatchNorm's per-class gains and biases form their own Adam group at
    # generator_lr x conditioning_lr_multiplier; everything else keeps generator_lr.
    g, d = pair()
    params = GanTrainParams(
        iterations=1, batch_size=8, generator_lr=1e-3, conditioning_lr_multiplier=10.0, checkpoint_every=1
    )
    train_gan(g, d, demo_images, params, device=CPU, checkpoint_path=tmp_path / "c.safetensors")
    groups = load_checkpoint(tmp_path / "c.safetensors").optimizers["generator"]["param_groups"]
    assert [group["lr"] for group in groups] == [1e-3, pytest.approx(1e-2)]
    assert len(groups[1]["params"]) == len(g.conditioning_parameters()) == 2 * 4  # gain + bias per upsampling
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(g.parameters()))
    discriminator = load_checkpoint(tmp_path / "c.safetensors").optimizers["discriminator"]["param_groups"]
    assert [group["lr"] for group in discriminator] == [4e-4]
    with pytest.raises(ValueError, match="conditioning_lr_multiplier"):
        GanTrainParams(conditioning_lr_multiplier=0.0)


def test_auxiliary_class_loss_trains_the_discriminators_class_head(demo_images):
    g = build_seeded_gan(GanNetworkSpec("generator", GENERATOR, 16, 32, 2, noise_dim=32), 0)
    spec = GanNetworkSpec("discriminator", DISCRIMINATOR, 8, 32, 2, auxiliary_classifier=True)
    d = build_seeded_gan(spec, 1)
    head_before = d.class_head.parametrizations.weight.original.detach().clone()
    params = GanTrainParams(iterations=2, batch_size=8, auxiliary_classifier_weight=1.0, ema_decay=0.0)
    report = train_gan(g, d, demo_images, params, device=CPU)
    assert not torch.equal(head_before, d.class_head.parametrizations.weight.original)
    assert np.isfinite(report.final_losses["generator"]) and np.isfinite(report.final_losses["discriminator"])
    scores, logits = d(torch.zeros(3, 3, 32, 32), torch.tensor([0, 1, 0]), class_logits=True)
    assert scores.shape == (3,) and logits.shape == (3, 2)
    # Without a class head the auxiliary loss cannot run: a clear error, not a silent no-op.
    with pytest.raises(ValueError, match="no class head"):
        train_gan(*pair(), demo_images, params, device=CPU)
    with pytest.raises(ValueError, match="generator has none"):
        GanNetworkSpec("generator", GENERATOR, 16, 32, 2, auxiliary_classifier=True)


@pytest.mark.parametrize(("loss", "critic_steps"), [("hinge", 1), ("wgan", 5)])
def test_each_critic_step_scores_real_and_fake_in_one_pass_and_the_generator_step_freezes_the_critic(
    demo_images, loss, critic_steps
):
    """Per iteration: per critic step, a fake batch generated without gradients and one discriminator
    pass over real + fake (batch 2B); then a fresh fake batch, with gradients, scored in one pass (B)
    with the discriminator's parameters frozen."""
    g, d = pair()
    generator_calls, discriminator_calls = [], []
    g.register_forward_hook(lambda module, args, out: generator_calls.append(torch.is_grad_enabled()))
    d.register_forward_hook(
        lambda module, args, out: discriminator_calls.append(
            (len(args[0]), any(p.requires_grad for p in module.parameters()))
        )
    )
    iterations, batch = 3, 8
    params = GanTrainParams(iterations=iterations, batch_size=batch, loss=loss, ema_decay=0.0)
    train_gan(g, d, demo_images, params, device=CPU)
    assert generator_calls == ([False] * critic_steps + [True]) * iterations
    assert discriminator_calls == ([(2 * batch, True)] * critic_steps + [(batch, False)]) * iterations
    assert all(p.requires_grad for p in d.parameters())  # unfrozen after each generator step
