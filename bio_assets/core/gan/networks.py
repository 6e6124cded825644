"""The searched conditional generator and projection discriminator (METHOD section 4).

Both skeletons have four cells, one per resolution. At image size S the generator starts
at S/16 (4x4 for 64, 2x2 for 32) and the discriminator ends there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bio_assets.core.gan.blocks import ConditionalBatchNorm, ResidualCell, sn_conv, sn_linear
from bio_assets.core.gan.genotypes import NUM_CELLS, GanGenotype
from bio_assets.core.gan.spectral import spectral_norm

IMAGE_SIZES = (32, 64)


@dataclass(frozen=True)
class GanNetworkSpec:
    """Everything that rebuilds one searched network; ``width``: the generator's channels at
    its first resolution (paper 1024) or the discriminator's at full size (paper 64)."""

    role: str  # "generator" or "discriminator"
    genotype: str
    width: int
    image_size: int
    num_classes: int
    noise_dim: int = 128
    # Discriminators only: a class head on the pooled features beside the projection term (AC-GAN).
    auxiliary_classifier: bool = False

    def __post_init__(self) -> None:
        GanGenotype.parse(self.genotype, self.role)
        if self.auxiliary_classifier and self.role != "discriminator":
            raise ValueError("auxiliary_classifier is a discriminator's head; the generator has none")
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"GAN image_size must be one of {IMAGE_SIZES}, got {self.image_size}")
        if self.width < 8 or self.width % 8:
            raise ValueError(f"width must be a multiple of 8 and >= 8, got {self.width}")
        if self.num_classes < 1 or self.noise_dim < 1:
            raise ValueError(f"num_classes and noise_dim must be >= 1, got {self.num_classes}, {self.noise_dim}")

    @property
    def parsed(self) -> GanGenotype:
        return GanGenotype.parse(self.genotype, self.role)

    def to_json(self) -> dict:
        return {"kind": f"searched_{self.role}", **asdict(self)}


class SearchedGenerator(nn.Module):
    """z (B, noise) + labels (B,) -> images (B, 3, S, S) in [-1, 1]."""

    conditional = True

    def __init__(self, spec: GanNetworkSpec) -> None:
        super().__init__()
        if spec.role != "generator":
            raise ValueError(f"SearchedGenerator needs a generator spec, got role {spec.role!r}")
        self.spec = spec
        self.noise_dim = spec.noise_dim
        genotype = spec.parsed
        w = spec.width
        channels = [w, w, w // 2, w // 4, w // 8]  # paper: 1024, 1024, 512, 256, 128
        self.stem = spectral_norm(nn.ConvTranspose2d(spec.noise_dim, w, spec.image_size // 16))
        self.cells = nn.ModuleList(ResidualCell(genotype, channels[i], i + 1) for i in range(NUM_CELLS))
        # Upsample: nearest x2 -> conv 3x3 to 2C' -> conditional BN -> GLU (halves to C').
        self.up_convs = nn.ModuleList(sn_conv(channels[i], 2 * channels[i + 1], 3) for i in range(NUM_CELLS))
        self.up_norms = nn.ModuleList(
            ConditionalBatchNorm(2 * channels[i + 1], spec.num_classes) for i in range(NUM_CELLS)
        )
        self.head = nn.Sequential(sn_conv(channels[-1], channels[-1], 3), nn.ELU(), sn_conv(channels[-1], 3, 3))

    def conditioning_parameters(self) -> list[nn.Parameter]:
        """Where the class enters: the per-class gains and biases of the conditional BatchNorms."""
        return [p for norm in self.up_norms for p in norm.parameters()]

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.elu(self.stem(z[:, :, None, None]))  # (B, W, S/16, S/16)
        for cell, conv, norm in zip(self.cells, self.up_convs, self.up_norms):
            h = cell(h)
            h = F.glu(norm(conv(F.interpolate(h, scale_factor=2, mode="nearest")), labels), dim=1)
        return torch.tanh(self.head(h))  # (B, 3, S, S)


class SearchedDiscriminator(nn.Module):
    """images (B, 3, S, S) + labels (B,) -> scores (B,): linear(features) + <embed(label), features>.

    With ``auxiliary_classifier``, ``forward(..., class_logits=True)`` also returns class logits
    (B, K) from the same features, for an auxiliary classification loss (AC-GAN).
    """

    conditional = True

    def __init__(self, spec: GanNetworkSpec) -> None:
        super().__init__()
        if spec.role != "discriminator":
            raise ValueError(f"SearchedDiscriminator needs a discriminator spec, got role {spec.role!r}")
        self.spec = spec
        genotype = spec.parsed
        channels = [spec.width * 2**i for i in range(NUM_CELLS + 1)]  # paper: 64 .. 1024
        self.stem = sn_conv(3, channels[0], 3)
        self.cells = nn.ModuleList(ResidualCell(genotype, channels[i], i + 1) for i in range(NUM_CELLS))
        # Downsample: conv 3x3 doubling -> pixel-unshuffle (x4 channels, half size) -> conv 1x1 -> ELU.
        self.down = nn.ModuleList(
            nn.Sequential(
                sn_conv(channels[i], 2 * channels[i], 3),
                nn.PixelUnshuffle(2),
                sn_conv(8 * channels[i], channels[i + 1], 1),
                nn.ELU(),
            )
            for i in range(NUM_CELLS)
        )
        self.linear = sn_linear(channels[-1], 1)
        self.embedding = spectral_norm(nn.Embedding(spec.num_classes, channels[-1]))
        self.class_head = sn_linear(channels[-1], spec.num_classes) if spec.auxiliary_classifier else None

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor, *, class_logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = F.elu(self.stem(x))  # (B, W, S, S)
        for cell, down in zip(self.cells, self.down):
            h = down(cell(h))
        features = h.sum(dim=(2, 3))  # (B, 16W)
        scores = self.linear(features).squeeze(1) + (self.embedding(labels) * features).sum(dim=1)
        if not class_logits:
            return scores
        if self.class_head is None:
            raise ValueError("this discriminator has no class head: build it with auxiliary_classifier=True")
        return scores, self.class_head(features)  # (B,), (B, K)


def build_searched(spec: GanNetworkSpec) -> nn.Module:
    return SearchedGenerator(spec) if spec.role == "generator" else SearchedDiscriminator(spec)
