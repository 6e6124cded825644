"""The cells' average pooling: the same values and gradients as torch's ``AvgPool2d`` with
``count_include_pad=False`` (float64, odd and tiny sizes, both layouts), known border divisors,
and bf16 channels-last within bf16 rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bio_assets.core.cnn.pooling import AveragePool3x3

REFERENCE = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (1, 1, 1, 1), (3, 4, 2, 5)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_values_and_gradients_equal_torchs_average_pool(shape, layout):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, generator=generator).contiguous(memory_format=layout)
    upstream = torch.randn(shape, dtype=torch.float64, generator=generator)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours_out, theirs_out = AveragePool3x3()(ours), REFERENCE(theirs)
    (ours_out * upstream).sum().backward()
    (theirs_out * upstream).sum().backward()
    torch.testing.assert_close(ours_out, theirs_out, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(AveragePool3x3(), (x.clone().requires_grad_(),))


def test_a_constant_gradient_sums_the_divisors_of_the_windows_covering_each_pixel():
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    AveragePool3x3()(x).sum().backward()
    # Windows hold 4 pixels at the corners, 6 on the edges, 9 in the centre; the centre pixel lies
    # in all 9 windows: 4 * 1/4 + 4 * 1/6 + 1/9.
    assert x.grad[0, 0, 1, 1].item() == pytest.approx(1 + 4 / 6 + 1 / 9)
    # A corner pixel lies in the windows of itself (4), its two edge neighbours (6) and the centre (9).
    assert x.grad[0, 0, 0, 0].item() == pytest.approx(1 / 4 + 2 / 6 + 1 / 9)


def test_bf16_channels_last_agrees_with_torch_within_bf16_rounding():
    x = torch.randn(4, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    x = x.bfloat16().contiguous(memory_format=torch.channels_last)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    AveragePool3x3()(ours).square().sum().backward()
    REFERENCE(theirs).square().sum().backward()
    assert ours.grad.dtype == torch.bfloat16
    torch.testing.assert_close(ours.grad.float(), theirs.grad.float(), rtol=2e-2, atol=2e-2)
