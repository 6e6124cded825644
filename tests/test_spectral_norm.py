"""Our spectral normalisation against torch's: same state, same outputs and gradients step by step,
and one normalisation per layer inside ``normalized_once``."""

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from bio_assets.core.gan.spectral import SpectralNorm, normalized_once, spectral_layers, spectral_norm


def small_network(normalize) -> nn.Module:
    """A transposed conv (rows at dim 1), a conv and a linear layer, float64 so that differences are rounding."""
    torch.manual_seed(0)
    return nn.Sequential(
        normalize(nn.ConvTranspose2d(8, 6, 2)),
        nn.ELU(),
        normalize(nn.Conv2d(6, 5, 3, padding=1)),
        nn.Flatten(),
        normalize(nn.Linear(5 * 3 * 3, 2)),
    ).double()


def max_difference(first: dict, second: dict) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(first.values(), second.values()))


def test_starts_with_torch_state_and_keys():
    ours, theirs = small_network(spectral_norm), small_network(torch_spectral_norm)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert max_difference(ours.state_dict(), theirs.state_dict()) == 0.0


@pytest.mark.parametrize("once", [False, True])
def test_training_steps_match_torch_outputs_gradients_and_singular_vectors(once):
    """Three SGD steps: the same loss, weight gradients and u/v buffers as torch's layer, read
    per layer (``once`` False) or all together on entry to ``normalized_once``."""
    ours, theirs = small_network(spectral_norm), small_network(torch_spectral_norm)
    x = torch.randn(4, 8, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        loss_theirs = theirs(x).square().sum()
        loss_theirs.backward()
        if once:
            with normalized_once(ours):
                loss_ours = ours(x).square().sum()
        else:
            loss_ours = ours(x).square().sum()
        loss_ours.backward()
        assert loss_ours.item() == pytest.approx(loss_theirs.item(), rel=1e-12)
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            assert torch.allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12), name
        assert max_difference(ours.state_dict(), theirs.state_dict()) < 1e-12
        with torch.no_grad():
            for network in (ours, theirs):
                for p in network.parameters():
                    p -= 0.1 * p.grad
                    p.grad = None


def test_evaluation_mode_uses_stored_vectors_and_loads_torch_state():
    ours, theirs = small_network(spectral_norm), small_network(torch_spectral_norm)
    x = torch.randn(3, 8, 2, 2, dtype=torch.float64)
    theirs(x)  # one power iteration, so the state differs from ours before loading
    ours.load_state_dict(theirs.state_dict())
    ours.eval(), theirs.eval()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    assert torch.allclose(ours(x), theirs(x), rtol=1e-12)
    assert max_difference(ours.state_dict(), before) == 0.0  # no iteration in evaluation


def test_normalized_once_iterates_each_layer_once_however_often_it_is_read():
    network = small_network(spectral_norm)
    x = torch.randn(2, 8, 2, 2, dtype=torch.float64)
    layer, _, _ = spectral_layers(network)[1]
    with normalized_once(network):
        after_entry = layer._u.clone()
        first, second = network(x), network(x)
        assert torch.equal(layer._u, after_entry)
    assert torch.equal(first, second)
    network(x)  # outside, each read iterates again
    assert not torch.equal(layer._u, after_entry)


def test_known_singular_value_and_frozen_weights_get_no_gradient():
    """diag(3, 1) has spectral norm 3: once the estimate has converged the layer is diag(1, 1/3)."""
    linear = spectral_norm(nn.Linear(2, 2, bias=False).double())
    with torch.no_grad():
        linear.parametrizations.weight.original.copy_(torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64)))
    for _ in range(30):
        linear.weight  # noqa: B018 - each read in training mode runs one power iteration
    assert torch.allclose(linear.weight, torch.diag(torch.tensor([1.0, 1 / 3], dtype=torch.float64)), atol=1e-10)
    linear.parametrizations.weight.original.requires_grad_(False)
    with normalized_once(linear):
        assert not linear.weight.requires_grad


def test_a_vector_weight_is_refused_with_its_shape():
    with pytest.raises(ValueError, match=r"2 or more dimensions, got \(4,\)"):
        SpectralNorm(torch.zeros(4))
