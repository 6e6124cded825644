"""Searched GAN networks and baselines: shapes, ranges, conditioning, spectral norm, every operation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from bio_assets.core.gan.baselines import GAN_BASELINES, BaselineSpec, build_baseline
from bio_assets.core.gan.blocks import (
    ConditionalBatchNorm,
    GanCell,
    HalvesBatchNorm,
    SelfAttention,
    halves_are_separate,
    make_operation,
    separate_halves,
)
from bio_assets.core.gan.genotypes import FIXED_DISCRIMINATOR, GAN_OPERATIONS, GanGenotype
from bio_assets.core.gan.networks import GanNetworkSpec, SearchedDiscriminator, SearchedGenerator, build_searched
from bio_assets.core.gan.search import inherit

GENERATOR = "{4, 234-16-6, [3, 4]}"


@pytest.mark.parametrize("name", GAN_OPERATIONS)
def test_every_operation_builds_and_keeps_the_shape(name):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    assert make_operation(name, 8)(x).shape == x.shape


def test_unknown_operation_is_rejected():
    with pytest.raises(ValueError, match="unknown GAN operation"):
        make_operation("conv_7x7", 8)


@pytest.mark.parametrize("size", [32, 64])
def test_generator_output_shape_and_range(size):
    torch.manual_seed(0)
    generator = SearchedGenerator(GanNetworkSpec("generator", GENERATOR, 16, size, 3, noise_dim=8))
    images = generator(torch.randn(4, 8) * 10, torch.tensor([0, 1, 2, 0]))
    assert images.shape == (4, 3, size, size)
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("size", [32, 64])
def test_discriminator_scores_one_value_per_image(size):
    torch.manual_seed(0)
    discriminator = SearchedDiscriminator(GanNetworkSpec("discriminator", FIXED_DISCRIMINATOR, 8, size, 3))
    assert discriminator(torch.randn(2, 3, size, size), torch.tensor([0, 1])).shape == (2,)


def test_projection_term_changes_with_the_label():
    torch.manual_seed(0)
    discriminator = SearchedDiscriminator(GanNetworkSpec("discriminator", FIXED_DISCRIMINATOR, 8, 32, 3)).eval()
    image = torch.randn(1, 3, 32, 32).repeat(3, 1, 1, 1)
    scores = discriminator(image, torch.tensor([0, 1, 2]))
    assert len(set(scores.tolist())) == 3


def test_conditional_batch_norm_differs_per_class():
    torch.manual_seed(0)
    norm = ConditionalBatchNorm(4, 2)
    nn.init.normal_(norm.gain.weight)  # trained gains differ per class; at init they are all 1
    x = torch.randn(1, 4, 3, 3).repeat(4, 1, 1, 1)
    out = norm(x, torch.tensor([0, 0, 1, 1]))
    assert torch.equal(out[0], out[1]) and not torch.allclose(out[0], out[2])


def test_spectral_norm_on_every_conv_transposed_conv_and_linear():
    for model in (
        SearchedGenerator(GanNetworkSpec("generator", GENERATOR, 16, 32, 3)),
        SearchedDiscriminator(GanNetworkSpec("discriminator", FIXED_DISCRIMINATOR, 8, 32, 3)),
    ):
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
        assert layers and all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in layers)


def test_attention_sits_after_the_listed_cells_only():
    generator = SearchedGenerator(GanNetworkSpec("generator", GENERATOR, 16, 32, 3))
    assert [cell.attention is not None for cell in generator.cells] == [False, False, True, True]
    assert isinstance(generator.cells[3].attention, SelfAttention)


def test_self_attention_starts_as_identity_and_learns_a_gain():
    torch.manual_seed(0)
    attention = SelfAttention(8)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(attention(x), x)
    attention.gain.data.fill_(1.0)
    assert not torch.allclose(attention(x), x)


def test_dead_cell_outputs_zeros_and_builds_no_operation():
    cell = GanCell(GanGenotype.parse("{3, 25-5, []}", "generator"), 4)
    assert len(cell.operations) == 0
    assert torch.equal(cell(torch.randn(1, 4, 2, 2)), torch.zeros(1, 4, 2, 2))


def test_invalid_specs_fail_loudly():
    with pytest.raises(ValueError, match="image_size must be one of"):
        GanNetworkSpec("generator", GENERATOR, 16, 48, 3)
    with pytest.raises(ValueError, match="multiple of 8"):
        GanNetworkSpec("generator", GENERATOR, 12, 32, 3)
    with pytest.raises(ValueError, match="operation digits"):
        GanNetworkSpec("generator", FIXED_DISCRIMINATOR, 16, 32, 3)


@pytest.mark.parametrize("name", sorted(GAN_BASELINES))
def test_baselines_generate_images_and_score_them(name):
    torch.manual_seed(0)
    generator, discriminator = build_baseline(BaselineSpec(name, 32, 32, 8))
    images = generator(torch.randn(3, generator.noise_dim), torch.zeros(3, dtype=torch.long))
    assert images.shape == (3, 3, 32, 32) and images.abs().max() <= 1.0
    assert discriminator(images, torch.zeros(3, dtype=torch.long)).shape == (3,)


def test_inheritance_copies_only_tensors_whose_shapes_match():
    torch.manual_seed(0)
    source = SearchedGenerator(GanNetworkSpec("generator", GENERATOR, 16, 32, 3))
    same = SearchedGenerator(GanNetworkSpec("generator", GENERATOR, 16, 32, 3))
    assert inherit(same, source.state_dict()) == 1.0
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), source.state_dict().values()))
    other = SearchedGenerator(GanNetworkSpec("generator", "{3, 12-6, []}", 16, 32, 3))
    before = other.cells[0].cell.operations[0][0].parametrizations.weight.original.clone()
    fraction = inherit(other, source.state_dict())
    assert 0.0 < fraction < 1.0
    assert torch.equal(other.stem.parametrizations.weight.original, source.stem.parametrizations.weight.original)
    assert torch.equal(
        other.cells[0].cell.operations[0][0].parametrizations.weight.original, before
    )  # conv_1x1 vs conv_3x3: shapes differ


def test_self_attention_matches_the_written_out_formula():
    torch.manual_seed(0)
    attention = SelfAttention(16)
    attention.gain.data.fill_(0.7)
    x = torch.randn(2, 16, 4, 4)
    q = attention.query(x).flatten(2)  # (B, 2, 16)
    k = torch.nn.functional.max_pool2d(attention.key(x), 2).flatten(2)  # (B, 2, 4)
    v = torch.nn.functional.max_pool2d(attention.value(x), 2).flatten(2)  # (B, 8, 4)
    weights = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, 16, 4)
    expected = x + 0.7 * attention.out((v @ weights.transpose(1, 2)).view(2, 8, 4, 4))
    assert torch.allclose(attention(x), expected, atol=1e-5)


def test_one_pass_over_real_and_fake_halves_equals_two_passes_with_their_running_statistics():
    """The discriminator scores a real and a fake batch in one pass inside ``separate_halves``: every
    output and BatchNorm running average is what two passes give (float64, so equal to rounding)."""
    spec = GanNetworkSpec("discriminator", "{4, 235-66-7, [4]}", 8, 32, 3, auxiliary_classifier=True)
    one, two = (build_searched(spec).double() for _ in range(2))
    two.load_state_dict(one.state_dict())
    real, fake = torch.randn(6, 3, 32, 32, dtype=torch.float64), torch.randn(6, 3, 32, 32, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    with parametrize.cached(), separate_halves():
        scores, logits = one(torch.cat([real, fake]), torch.cat([labels, labels]), class_logits=True)
    with parametrize.cached():
        (real_scores, real_logits), (fake_scores, _) = (two(x, labels, class_logits=True) for x in (real, fake))
    torch.testing.assert_close(scores, torch.cat([real_scores, fake_scores]))
    torch.testing.assert_close(logits[:6], real_logits)
    norms = [(a, b) for a, b in zip(one.modules(), two.modules()) if isinstance(a, HalvesBatchNorm)]
    assert norms and all(halves_are_separate(net) for net in (one, two))
    for a, b in norms:
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)
        assert int(a.num_batches_tracked) == int(b.num_batches_tracked) == 2
    with separate_halves(), pytest.raises(ValueError, match="even batch"):
        one(torch.randn(5, 3, 32, 32, dtype=torch.float64), torch.zeros(5, dtype=torch.long))


def test_only_networks_whose_batch_statistics_keep_halves_apart_are_scored_in_one_pass():
    assert halves_are_separate(build_searched(GanNetworkSpec("discriminator", "{3, 26-6, []}", 8, 32, 2)))
    assert not halves_are_separate(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
    assert halves_are_separate(nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(1, 8)))  # per-sample norms
