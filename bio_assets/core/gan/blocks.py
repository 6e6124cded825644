"""Building blocks of the searched GAN: spectrally normalised layers, cell operations, the
cell DAG, self-attention and class-conditional BatchNorm. Shapes are ``(B, C, H, W)``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from bio_assets.core.gan.genotypes import GAN_OPERATIONS, GanGenotype
from bio_assets.core.gan.spectral import spectral_norm
from bio_assets.core.search.cell_codes import edge_list


def sn_conv(
    in_channels: int,
    out_channels: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int | None = None,
    groups: int = 1,
    bias: bool = True,
) -> nn.Module:
    padding = kernel // 2 if padding is None else padding
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=bias))


def sn_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Module:
    return spectral_norm(nn.Linear(in_features, out_features, bias=bias))


_SEPARATE_HALVES: ContextVar[bool] = ContextVar("separate_halves", default=False)


@contextmanager
def separate_halves() -> Iterator[None]:
    """Inside, every :class:`HalvesBatchNorm` in training mode treats the two halves of its batch as two
    batches, so the discriminator scores a real and a fake batch in one pass, with the statistics,
    outputs and running averages of two passes. One call per layer instead of two: a small layer
    (the demo's) costs about as much at batch 2B as at B, a large one as much as two calls."""
    token = _SEPARATE_HALVES.set(True)
    try:
        yield
    finally:
        _SEPARATE_HALVES.reset(token)


class HalvesBatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and state dict) that, inside :func:`separate_halves`
    and in training mode, normalises each half of the batch with its own statistics and updates the
    running averages with the first half, then the second, exactly as two calls would."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _SEPARATE_HALVES.get()):
            return super().forward(x)
        if x.shape[0] % 2:
            raise ValueError(f"separate_halves needs an even batch, got {x.shape[0]}")
        # chunk, not two slices: its backward is one concatenation, where each slice's would fill a
        # zero tensor of the whole batch.
        first, second = x.chunk(2)
        return torch.cat([super().forward(first), super().forward(second)])


def halves_are_separate(network: nn.Module) -> bool:
    """Whether ``network`` computes each half of a batch inside :func:`separate_halves` as on its own:
    every batch-statistics layer in it is a :class:`HalvesBatchNorm` (per-sample norms are fine)."""
    batch_norms = (m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    return all(isinstance(m, HalvesBatchNorm) for m in batch_norms)


class ConvBlock(nn.Sequential):
    """The source's GAN conv order: Conv -> ELU -> BatchNorm (channels unchanged)."""

    def __init__(self, channels: int, kernel: int, separable: bool = False) -> None:
        if separable:
            conv = nn.Sequential(
                sn_conv(channels, channels, kernel, groups=channels, bias=False), sn_conv(channels, channels, 1)
            )
        else:
            conv = sn_conv(channels, channels, kernel)
        super().__init__(conv, nn.ELU(), HalvesBatchNorm(channels))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_operation(name: str, channels: int) -> nn.Module:
    """One edge operation of a GAN cell; spatial size and channels are kept."""
    factories = {
        "conv_1x1": lambda: ConvBlock(channels, 1),
        "conv_3x3": lambda: ConvBlock(channels, 3),
        "conv_5x5": lambda: ConvBlock(channels, 5),
        "sep_conv_3x3": lambda: ConvBlock(channels, 3, separable=True),
        "zero": Zero,
        "skip": nn.Identity,
        "max_pool_3x3": lambda: nn.MaxPool2d(3, stride=1, padding=1),
        "avg_pool_3x3": lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    }
    if name not in factories:
        raise ValueError(f"unknown GAN operation {name!r}; known: {GAN_OPERATIONS}")
    return factories[name]()


class GanCell(nn.Module):
    """Node 0 is the input; node j sums its live incoming edges; the last node is the output.

    Only edges on an input-output path are built, so dead edges cost nothing; a cell with no
    live edge returns zeros and the block around it reduces to its residual.
    """

    def __init__(self, genotype: GanGenotype, channels: int) -> None:
        super().__init__()
        self.nodes = genotype.nodes
        live = genotype.live_edges()
        self.edges = [edge for edge in edge_list(genotype.nodes) if edge in live]
        self.operations = nn.ModuleList(make_operation(GAN_OPERATIONS[live[edge] - 1], channels) for edge in self.edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states: list[torch.Tensor | None] = [x] + [None] * (self.nodes - 1)
        for (source, target), operation in zip(self.edges, self.operations):
            out = operation(states[source])
            states[target] = out if states[target] is None else states[target] + out
        return states[-1] if states[-1] is not None else torch.zeros_like(x)


class SelfAttention(nn.Module):
    """SAGAN self-attention added through a learned residual gain (starts at 0: identity).

    Keys and values are max-pooled 2x2 as in BigGAN's attention block: every position still
    attends over the whole image, at a quarter of the cost of full-resolution keys.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.query, self.key = sn_conv(channels, inner, 1, bias=False), sn_conv(channels, inner, 1, bias=False)
        self.value = sn_conv(channels, max(channels // 2, 1), 1, bias=False)
        self.out = sn_conv(max(channels // 2, 1), channels, 1, bias=False)
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        pool = (lambda t: F.max_pool2d(t, 2)) if h >= 2 and w >= 2 else (lambda t: t)
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, C/8)
        k = pool(self.key(x)).flatten(2)  # (B, C/8, HW/4)
        v = pool(self.value(x)).flatten(2).transpose(1, 2)  # (B, HW/4, C/2)
        # o_i = sum_j softmax_j(q_i . k_j) v_j, unscaled as in SAGAN. Written out: for keys narrower
        # than values, scaled_dot_product_attention takes its math path on the CPU, which also checks
        # every row of scores for -inf (a generator step at 16x16 spent 3 ms more there).
        weights = torch.softmax(torch.bmm(q, k), dim=-1, dtype=torch.float32)  # (B, HW, HW/4)
        o = torch.bmm(weights.to(v.dtype), v)  # (B, HW, C/2)
        return x + self.gain * self.out(o.transpose(1, 2).reshape(b, -1, h, w))


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine terms, then a per-class gain (init 1) and bias (init 0)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class ResidualCell(nn.Module):
    """``x + cell(x)``, then self-attention when the genotype asks for it after this cell."""

    def __init__(self, genotype: GanGenotype, channels: int, index: int) -> None:
        super().__init__()
        self.cell = GanCell(genotype, channels)
        self.attention = SelfAttention(channels) if index in genotype.attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.cell(x)
        return self.attention(x) if self.attention is not None else x
