"""Classic GAN baselines (METHOD section 4): the source's shared DCGAN-style skeleton with each
model's own loss, and its histology ResNet-block GAN with self-attention. Unconditional, as in
the source: every ``forward`` takes labels for a common interface and ignores them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bio_assets.core.gan.blocks import SelfAttention, sn_conv, sn_linear
from bio_assets.core.gan.networks import IMAGE_SIZES
from bio_assets.core.gan.training import GanRecipe


@dataclass(frozen=True)
class GanBaseline:
    loss: str
    norm: str  # discriminator normalisation: "batch", "layer" (WGAN-GP: no batch statistics in the penalty) or "none"
    architecture: str  # "dcgan" skeleton, "began" autoencoder discriminator, or "resnet_sagan"
    generator_lr: float
    discriminator_lr: float
    source_fid: dict[int, float]  # iterations -> the source's FID (Table 1.5)
    source_note: str = "cytology, 64x64, batch 64, Inception FID (METHOD section 4)"
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.5, 0.999)

    @property
    def recipe(self) -> GanRecipe:
        """As the source trained its baselines: each model's published loss and optimizer, no DiffAugment, no EMA."""
        return GanRecipe(
            loss=self.loss,
            optimizer=self.optimizer,
            generator_lr=self.generator_lr,
            discriminator_lr=self.discriminator_lr,
            betas=self.betas,
            diffaugment=(),
            ema_decay=0.0,
        )


_TABLE_1_5 = {
    "dcgan": {1000: 24.58, 5000: 20.66, 10000: 16.34, 15000: 12.67},
    "wgan": {1000: 26.89, 5000: 20.18, 10000: 16.02, 15000: 12.72},
    "wgan_gp": {1000: 34.17, 5000: 29.35, 10000: 25.01, 15000: 19.09},
    "bgan": {1000: 16.89, 5000: 15.21, 10000: 13.41, 15000: 10.03},
    "began": {1000: 21.90, 5000: 20.04, 10000: 18.23, 15000: 15.32},
}
GAN_BASELINES: dict[str, GanBaseline] = {
    "dcgan": GanBaseline("bce", "batch", "dcgan", 2e-4, 2e-4, _TABLE_1_5["dcgan"]),
    # Each as its paper trained it (the source used the authors' settings): WGAN RMSprop 5e-5
    # (Arjovsky et al. 2017), WGAN-GP Adam 1e-4 with betas (0, 0.9) (Gulrajani et al. 2017).
    "wgan": GanBaseline("wgan", "batch", "dcgan", 5e-5, 5e-5, _TABLE_1_5["wgan"], optimizer="rmsprop"),
    "wgan_gp": GanBaseline("wgan_gp", "layer", "dcgan", 1e-4, 1e-4, _TABLE_1_5["wgan_gp"], betas=(0.0, 0.9)),
    "bgan": GanBaseline("bgan", "batch", "dcgan", 2e-4, 2e-4, _TABLE_1_5["bgan"]),
    "began": GanBaseline("began", "none", "began", 2e-4, 2e-4, _TABLE_1_5["began"]),
    "resnet_sagan": GanBaseline(
        "hinge",
        "none",
        "resnet_sagan",
        1e-4,
        4e-4,
        {},
        "histology variant: FID 68, IS 3.02 after 11 h, batch 96 (METHOD section 4)",
    ),
}
SEARCHED_SOURCE_FID = 3.39  # GA-GAN, 100 000 iterations (METHOD section 4)


@dataclass(frozen=True)
class BaselineSpec:
    name: str
    image_size: int
    generator_width: int  # paper 1024: the first (smallest) resolution's channels, halved per step
    discriminator_width: int  # paper 64: full resolution's channels, doubled per step
    noise_dim: int = 100

    def __post_init__(self) -> None:
        if self.name not in GAN_BASELINES:
            raise ValueError(f"unknown GAN baseline {self.name!r}; known: {sorted(GAN_BASELINES)}")
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"GAN image_size must be one of {IMAGE_SIZES}, got {self.image_size}")
        if self.generator_width < 16 or self.generator_width % 16 or self.discriminator_width < 1:
            raise ValueError(
                f"generator_width must be a multiple of 16, discriminator_width >= 1; got {self.generator_width}, "
                f"{self.discriminator_width}"
            )

    def to_json(self) -> dict:
        return {"kind": "gan_baseline", **asdict(self)}


def _norm(kind: str, channels: int) -> nn.Module:
    return {"batch": lambda: nn.BatchNorm2d(channels), "layer": lambda: nn.GroupNorm(1, channels), "none": nn.Identity}[
        kind
    ]()


class DcganGenerator(nn.Module):
    """z (B, noise) -> (B, 3, S, S): 4 x (transposed conv, BN, ReLU) then a transposed conv and tanh."""

    conditional = False

    def __init__(self, noise_dim: int, width: int, image_size: int) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        channels = [width // 2**i for i in range(4)]  # paper: 1024, 512, 256, 128
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(noise_dim, channels[0], image_size // 16, 1, 0, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
        ]
        for i in range(3):
            layers += [
                nn.ConvTranspose2d(channels[i], channels[i + 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels[i + 1]),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers, nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(z[:, :, None, None])


class DcganEncoder(nn.Sequential):
    """(B, 3, S, S) -> (B, 8W, S/16, S/16): conv + LeakyReLU, then 3 x (conv, norm, LeakyReLU)."""

    def __init__(self, width: int, norm: str) -> None:
        layers: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(3):
            layers += [
                nn.Conv2d(width * 2**i, width * 2 ** (i + 1), 4, 2, 1, bias=norm == "none"),
                _norm(norm, width * 2 ** (i + 1)),
                nn.LeakyReLU(0.2),
            ]
        super().__init__(*layers)


class DcganDiscriminator(nn.Module):
    """(B, 3, S, S) -> scores (B,), the encoder followed by a conv over the last S/16 x S/16 map."""

    conditional = False

    def __init__(self, width: int, image_size: int, norm: str) -> None:
        super().__init__()
        self.encoder = DcganEncoder(width, norm)
        self.out = nn.Conv2d(8 * width, 1, image_size // 16, 1, 0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.encoder(x)).flatten()


class BeganDiscriminator(nn.Module):
    """An autoencoder; its score is the per-image L1 reconstruction error (B,)."""

    conditional = False

    def __init__(self, width: int, image_size: int, generator_width: int, code_dim: int = 64) -> None:
        super().__init__()
        self.encoder = DcganEncoder(width, "none")
        self.code = nn.Linear(8 * width * (image_size // 16) ** 2, code_dim)
        self.decoder = DcganGenerator(code_dim, generator_width, image_size)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        reconstruction = self.decoder(self.code(self.encoder(x).flatten(1)))
        return (reconstruction - x).abs().flatten(1).mean(dim=1)


class ResBlock(nn.Module):
    """Pre-activation residual block, nearest x2 up (generator) or 2x2 average-pool down (discriminator)."""

    def __init__(self, in_channels: int, out_channels: int, resample: str) -> None:
        super().__init__()
        self.resample = resample
        self.norms = (
            nn.ModuleList([nn.BatchNorm2d(in_channels), nn.BatchNorm2d(out_channels)]) if resample == "up" else None
        )
        self.conv1, self.conv2 = sn_conv(in_channels, out_channels, 3), sn_conv(out_channels, out_channels, 3)
        self.shortcut = sn_conv(in_channels, out_channels, 1)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return F.avg_pool2d(x, 2) if self.resample == "down" else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norms[0](x)) if self.norms is not None else F.relu(x)
        h = self.conv1(self._resize(h) if self.resample == "up" else h)
        h = self.conv2(F.relu(self.norms[1](h)) if self.norms is not None else F.relu(h))
        h = self._resize(h) if self.resample == "down" else h
        return h + self.shortcut(self._resize(x))


class ResnetSaganGenerator(nn.Module):
    """z -> linear -> 4 up blocks (attention after the 3rd) -> BN, ReLU, conv, tanh."""

    conditional = False

    def __init__(self, noise_dim: int, width: int, image_size: int) -> None:
        super().__init__()
        self.noise_dim, self.base, self.width = noise_dim, image_size // 16, width
        channels = [width // 2**i for i in range(5)]
        self.linear = sn_linear(noise_dim, width * self.base**2)
        self.blocks = nn.ModuleList(ResBlock(channels[i], channels[i + 1], "up") for i in range(4))
        self.attention = SelfAttention(channels[3])
        self.head = nn.Sequential(nn.BatchNorm2d(channels[4]), nn.ReLU(), sn_conv(channels[4], 3, 3), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(len(z), self.width, self.base, self.base)
        for index, block in enumerate(self.blocks, start=1):
            h = block(h)
            if index == 3:
                h = self.attention(h)
        return self.head(h)


class ResnetSaganDiscriminator(nn.Module):
    """5 residual blocks (2x2 average pooling in the first 4, attention after the 1st) -> sum -> 2 linear layers."""

    conditional = False

    def __init__(self, width: int) -> None:
        super().__init__()
        channels = [3] + [width * 2**i for i in range(5)]
        self.blocks = nn.ModuleList(
            ResBlock(channels[i], channels[i + 1], "down" if i < 4 else "none") for i in range(5)
        )
        self.attention = SelfAttention(channels[1])
        self.head = nn.Sequential(sn_linear(channels[-1], channels[-1]), nn.ReLU(), sn_linear(channels[-1], 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for index, block in enumerate(self.blocks, start=1):
            h = block(h)
            if index == 1:
                h = self.attention(h)
        return self.head(F.relu(h).sum(dim=(2, 3))).flatten()


def build_baseline(spec: BaselineSpec) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) of the named baseline."""
    baseline = GAN_BASELINES[spec.name]
    if baseline.architecture == "resnet_sagan":
        return ResnetSaganGenerator(spec.noise_dim, spec.generator_width, spec.image_size), ResnetSaganDiscriminator(
            spec.discriminator_width
        )
    generator = DcganGenerator(spec.noise_dim, spec.generator_width, spec.image_size)
    if baseline.architecture == "began":
        return generator, BeganDiscriminator(spec.discriminator_width, spec.image_size, spec.generator_width)
    return generator, DcganDiscriminator(spec.discriminator_width, spec.image_size, baseline.norm)
