"""The cells' 3x3 stride-1 average pooling, with a backward pass made of a forward pass.

Why: a search candidate spends about half of its CPU training step in its cells' pooling (the
source's best cell ``3501-110-44-1`` in ``5-[1]``, C=32, batch 64 at 64 px, bf16 channels-last on a
2-core Xeon with AMX: 121 images/s, 250 with the cell pools replaced by identities). torch's CPU
kernels for these are memory-bound, and ``avg_pool2d``'s backward takes 5x its forward (bf16
channels-last, 64x32x64x64: 6 ms forward, 32 ms backward). ``AveragePool3x3`` computes the same
values and gradients with a second forward kernel as its backward: 26 ms for both, and 143 instead
of 121 images/s for that candidate. (A max of 3 along W then H, done the same way for
``max_pool2d``, is 4x faster forward but 3x slower in all: its backward routes through element-wise
masks on strided views.) ``docs/benchmarks.md`` has the measurements.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _window_counts(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W): how many pixels of the image each 3x3 window with padding 1 covers (9, 6 or 4)."""
    ones = torch.ones(1, 1, height, width, dtype=like.dtype, device=like.device)
    return F.avg_pool2d(ones, 3, stride=1, padding=1, divisor_override=1)


class _AveragePool3x3(torch.autograd.Function):
    """y = S(x) / n, with S the 3x3 box sum over zero padding and n the window's pixel count
    (``count_include_pad=False``). S is its own adjoint, so dL/dx = S(dL/dy / n): one more forward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        counts = _window_counts(x.shape[-2], x.shape[-1], x)
        ctx.save_for_backward(counts)
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (counts,) = ctx.saved_tensors
        return F.avg_pool2d(grad_output / counts, 3, stride=1, padding=1, divisor_override=1)


class AveragePool3x3(nn.Module):
    """``nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)`` with a faster backward;
    (B, C, H, W) -> (B, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _AveragePool3x3.apply(x)
