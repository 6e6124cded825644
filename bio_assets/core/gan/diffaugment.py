"""DiffAugment (Zhao et al., 2020), policies ``color`` and ``translation``: differentiable
augmentations applied alike to every real and fake image the discriminator sees, so it
cannot memorise a small training set while the generator still gets gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation")
TRANSLATION_RATIO = 0.125


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw per image, shaped (B, 1, 1, 1), on ``x``'s device, in ``x``'s dtype."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image; x in [-1, 1]."""
    x = x + (_uniform(x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = TRANSLATION_RATIO
) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, filling with zeros."""
    b, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, (b, 1, 1), generator=generator, device=x.device)
    dx = torch.randint(-shift_w, shift_w + 1, (b, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] + dy + 1  # (B, H, 1) in the padded image
    cols = torch.arange(w, device=x.device)[None, None, :] + dx + 1  # (B, 1, W)
    rows, cols = rows.clamp(0, h + 1).expand(b, h, w), cols.clamp(0, w + 1).expand(b, h, w)
    padded = F.pad(x, (1, 1, 1, 1))  # (B, C, H+2, W+2): the zero border is what shifted-in pixels read
    batch = torch.arange(b, device=x.device)[:, None, None].expand(b, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


AUGMENTATIONS = {"color": color, "translation": translation}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply each policy in order; shape, dtype and device are kept, gradients flow to ``x``."""
    unknown = [p for p in policy if p not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown DiffAugment policies {unknown}; known: {POLICIES}")
    for name in policy:
        x = AUGMENTATIONS[name](x, generator)
    return x
