"""Spectral normalisation (Miyato et al., 2018) whose layers can be normalised all at once.

``SpectralNorm`` is a parametrization ``W -> W / sigma(W)`` with the buffers, initialisation and
state-dict keys of ``torch.nn.utils.parametrizations.spectral_norm`` (``...weight.original``,
``...weight.0._u``, ``...weight.0._v``), so checkpoints move between the two. Alone, each layer
normalises its weight when it is read, as torch's does: a dozen small operations per layer and
read. Inside :func:`normalized_once`, every layer of the given networks is normalised on entry in
one go (a matrix-vector product per layer and list-wide ``_foreach`` operations for the rest),
and each read returns that tensor: a demo-sized GAN pair has 58 such layers, and normalising
them at every read costs 25-40% of a training iteration on a 2-core CPU.

In training mode each normalisation runs one power iteration. With ``u = normalize(W v)`` and
``t = W^T u``, the new right vector is ``v = t / |t|`` and ``sigma = u^T W v = |t|``: the
gradient of ``|t|`` with ``u`` held constant, ``u v^T``, is the gradient of ``u^T W v`` with
``u`` and ``v`` held constant, which is what torch's layer differentiates. Sigma is computed in
fp32 whatever autocast is active (CUDA's autocast would run the products in fp16).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

EPS = 1e-12  # the floor of a norm before dividing by it, torch's default
INITIAL_POWER_ITERATIONS = 15  # at construction, as torch's layer does

# id(SpectralNorm) -> its normalised weight, inside normalized_once; None outside any.
_NORMALIZED: ContextVar[dict[int, torch.Tensor] | None] = ContextVar("spectrally_normalized", default=None)


class SpectralNorm(nn.Module):
    """The parametrization: ``forward(W)`` is ``W / sigma(W)``, ``sigma`` from the ``_u`` and ``_v``
    estimates of the top singular vectors of ``W`` viewed as a matrix with ``dim`` as rows."""

    def __init__(self, weight: torch.Tensor, dim: int = 0) -> None:
        super().__init__()
        if weight.ndim < 2:
            raise ValueError(f"spectral norm needs a weight of 2 or more dimensions, got {tuple(weight.shape)}")
        self.dim = dim if dim >= 0 else dim + weight.ndim
        matrix = self.matrix(weight)
        h, w = matrix.shape
        # The draws and the 15 iterations of torch's layer, so a seeded network starts the same.
        self.register_buffer("_u", F.normalize(matrix.new_empty(h).normal_(0, 1), dim=0, eps=EPS))
        self.register_buffer("_v", F.normalize(matrix.new_empty(w).normal_(0, 1), dim=0, eps=EPS))
        with torch.no_grad():
            for _ in range(INITIAL_POWER_ITERATIONS):
                self._u.copy_(F.normalize(torch.mv(matrix, self._v), dim=0, eps=EPS))
                self._v.copy_(F.normalize(torch.mv(matrix.t(), self._u), dim=0, eps=EPS))

    def matrix(self, weight: torch.Tensor) -> torch.Tensor:
        """``weight`` as a matrix (out, in * k * k) for dim 0; (dim's size, the rest) otherwise."""
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.flatten(1)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        precomputed = _NORMALIZED.get()
        if precomputed is not None and id(self) in precomputed:
            return precomputed[id(self)]
        return normalize_weights([self], [weight])[0]

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value  # assigning a weight sets the unnormalised one, as torch's layer does


def spectral_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """``module`` with ``name`` spectrally normalised; rows are dim 1 for transposed convolutions
    (their output channels), dim 0 otherwise, as torch's ``spectral_norm`` chooses."""
    transposed = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    parametrize.register_parametrization(module, name, SpectralNorm(getattr(module, name), dim=1 if transposed else 0))
    return module


def normalize_weights(layers: list[SpectralNorm], weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """``W / sigma(W)`` for each layer and its unnormalised weight; layers in training mode first run
    one power iteration, updating their ``_u`` and ``_v``. Differentiable in the weights."""
    if not layers:
        return []
    return list(_SpectrallyNormalized.apply(tuple(layers), *weights))


class _SpectrallyNormalized(torch.autograd.Function):
    """``W_i / sigma_i`` for a list of layers, with the whole list's backward in a few list-wide
    operations: with ``u`` and ``v`` held constant, ``dL/dW = (G - <G, W> / sigma u v^T) / sigma``
    for ``G = dL/d(W / sigma)``, where autograd's chain (division, dot, two products) costs
    about ten small operations per layer. Only the vectors and sigmas are kept for the backward
    (the weights are the inputs), so a forward without gradients computes nothing more."""

    @staticmethod
    def forward(ctx, layers: tuple[SpectralNorm, ...], *weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
        device_type = weights[0].device.type
        with torch.no_grad(), torch.autocast(device_type, enabled=False):
            matrices = [layer.matrix(w) for layer, w in zip(layers, weights)]  # (rows, columns) views
            us, vs, sigmas = _singular_estimates(layers, matrices)
            normalized = torch._foreach_div(weights, sigmas)
        ctx.dims = [layer.dim for layer in layers]
        ctx.save_for_backward(*weights, *us, *vs, *sigmas)
        return tuple(normalized)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> tuple:
        n = len(grads)
        saved = ctx.saved_tensors
        weights, us, vs, sigmas = (saved[i * n : (i + 1) * n] for i in range(4))
        along_weight = torch._foreach_div([(g * w).sum() for g, w in zip(grads, weights)], sigmas)  # <G, W / sigma>
        outer = [
            torch.outer(u, v).view(w.movedim(dim, 0).shape).movedim(0, dim)  # u v^T in W's shape, rows at dim
            for u, v, w, dim in zip(us, vs, weights, ctx.dims)
        ]
        weight_grads = torch._foreach_sub(grads, torch._foreach_mul(outer, along_weight))
        torch._foreach_div_(weight_grads, sigmas)
        return (None, *weight_grads)


def _singular_estimates(
    layers: tuple[SpectralNorm, ...], matrices: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """(u, v, sigma) per layer, with the buffers updated by one power iteration where the layer trains.
    Training: ``u = normalize(W v)``, ``t = W^T u``, ``v = t / |t|``, ``sigma = u^T W v = |t|``.
    Evaluation: the stored ``u`` and ``v``, ``sigma = u^T W v``."""
    # Copies, not the buffers: a backward keeps these, and a later power iteration updates the buffers.
    us: list[torch.Tensor | None] = [None] * len(layers)
    vs: list[torch.Tensor | None] = [None] * len(layers)
    sigmas: list[torch.Tensor | None] = [None] * len(layers)
    iterating = [i for i, layer in enumerate(layers) if layer.training]
    if iterating:
        new_us = [torch.mv(matrices[i], layers[i]._v) for i in iterating]
        torch._foreach_div_(new_us, torch._foreach_clamp_min(torch._foreach_norm(new_us), EPS))
        transposed = [torch.mv(matrices[i].t(), u) for i, u in zip(iterating, new_us)]
        norms = torch._foreach_norm(transposed)
        new_vs = torch._foreach_div(transposed, torch._foreach_clamp_min(norms, EPS))
        # In place: the buffers are the layer's state (state dict, an EMA copy's buffers).
        torch._foreach_copy_([layers[i]._u for i in iterating], new_us)
        torch._foreach_copy_([layers[i]._v for i in iterating], new_vs)
        for i, u, v, sigma in zip(iterating, new_us, new_vs, norms):
            us[i], vs[i], sigmas[i] = u, v, sigma
    for i, layer in enumerate(layers):
        if sigmas[i] is None:  # evaluation: the stored estimates, not updated
            us[i], vs[i] = layer._u.clone(), layer._v.clone()
            sigmas[i] = torch.dot(us[i], torch.mv(matrices[i], vs[i]))
    return us, vs, sigmas  # type: ignore[return-value]


def spectral_layers(*networks: nn.Module) -> list[tuple[SpectralNorm, nn.Module, str]]:
    """Every ``SpectralNorm`` alone on a tensor of ``networks``: (parametrization, its module, tensor name)."""
    found = []
    for network in networks:
        for module in network.modules():
            if not parametrize.is_parametrized(module):
                continue
            for name, chain in module.parametrizations.items():
                if len(chain) == 1 and isinstance(chain[0], SpectralNorm):  # its input is the original
                    found.append((chain[0], module, name))
    return found


@contextmanager
def normalized_once(*networks: nn.Module) -> Iterator[None]:
    """Inside, every spectrally normalised layer of ``networks`` reads the weight normalised on entry,
    all layers together: one power iteration per layer in training mode however often the layers
    run inside. Gradients flow to the unnormalised weights where they require them on entry."""
    found = spectral_layers(*networks)
    originals = [module.parametrizations[name].original for _, module, name in found]
    normalized = normalize_weights([layer for layer, _, _ in found], originals)
    outer = _NORMALIZED.get() or {}
    token = _NORMALIZED.set({**outer, **{id(layer): w for (layer, _, _), w in zip(found, normalized)}})
    try:
        yield
    finally:
        _NORMALIZED.reset(token)
