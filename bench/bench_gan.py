"""GAN training and FID: our trainer against a plain PyTorch loop for the same networks and
batch, and our FID (features -> number) against torchmetrics' FrechetInceptionDistance given
the same feature extractor. Each pair runs in the same process, one after the other."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from bench.demo_data import demo_classification_data
from bench.results import BenchResult
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.spectral import spectral_layers
from bio_assets.core.gan.training import GanImages, GanTrainParams, to_model_range, train_gan
from bio_assets.core.hardware import gan_precision_for
from bio_assets.core.metrics.extractors import build_extractor_model, domain_extractor
from bio_assets.core.metrics.fid import FeatureStatistics, frechet_distance

GENERATOR = "{4, 236-42-6, [3, 4]}"  # 4-node cell, attention after cells 3 and 4, as the source found
DISCRIMINATOR = "{4, 235-66-7, [4]}"
WIDTHS, SIZE, BATCH, ITERATIONS = (64, 8), 32, 16, 40
CPU = torch.device("cpu")


def networks(num_classes: int) -> tuple[nn.Module, nn.Module]:
    g = build_seeded_gan(GanNetworkSpec("generator", GENERATOR, WIDTHS[0], SIZE, num_classes), 0)
    d = build_seeded_gan(GanNetworkSpec("discriminator", DISCRIMINATOR, WIDTHS[1], SIZE, num_classes), 1)
    return g, d


def with_torch_spectral_norm(network: nn.Module) -> nn.Module:
    """``network`` with each of our spectral normalisations replaced by torch's, holding the same weight
    and singular-vector estimates: what a hand-written loop would use."""
    for layer, module, name in spectral_layers(network):
        u, v = layer._u.clone(), layer._v.clone()
        parametrize.remove_parametrizations(module, name, leave_parametrized=False)
        torch_spectral_norm(module, name, dim=layer.dim)
        module.parametrizations[name][0]._u.copy_(u)
        module.parametrizations[name][0]._v.copy_(v)
    return network


def plain_loop(data: GanImages, device: torch.device = CPU) -> float:
    """What one would write by hand: uniform sampling, hinge loss, TTUR Adam, torch's spectral norm;
    no DiffAugment, no EMA; fp32."""
    g, d = (with_torch_spectral_norm(net).to(device) for net in networks(data.num_classes))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-4, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(0)

    def noise() -> torch.Tensor:
        return torch.randn(BATCH, g.noise_dim, generator=generator).to(device)

    def some_labels() -> torch.Tensor:
        return torch.randint(0, data.num_classes, (BATCH,), generator=generator).to(device)

    synchronize(device)
    started = time.perf_counter()
    for _ in range(ITERATIONS):
        rows = torch.randint(0, len(data.labels), (BATCH,), generator=generator)
        real, labels = to_model_range(data.images[rows], device), data.labels[rows].to(device)
        fake_labels = some_labels()
        with torch.no_grad():
            fake = g(noise(), fake_labels)
        loss_d = F.relu(1 - d(real, labels)).mean() + F.relu(1 + d(fake, fake_labels)).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        fake_labels = some_labels()
        loss_g = -d(g(noise(), fake_labels), fake_labels).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    synchronize(device)
    return ITERATIONS / (time.perf_counter() - started)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def gan_rates(data: GanImages, device: torch.device = CPU, *, rounds: int = 3) -> tuple[float, float, str]:
    """(ours it/s, plain fp32 loop it/s, our precision): the median of ``rounds`` alternating pairs on
    fresh networks, after a warm-up of both (one pair alone swung by 30% on a shared 2-core machine)."""
    precision = gan_precision_for(device, amp=True)  # what the GAN assets train in
    g, d = networks(data.num_classes)
    warm_up = GanTrainParams(iterations=3, batch_size=BATCH)
    train_gan(g, d, data, warm_up, device=device, precision=precision)  # oneDNN caches
    plain_loop(data, device)  # warm-up
    ours, reference = [], []
    for _ in range(rounds):
        reference.append(plain_loop(data, device))
        g, d = networks(data.num_classes)
        params = GanTrainParams(iterations=ITERATIONS, batch_size=BATCH)
        ours.append(train_gan(g, d, data, params, device=device, precision=precision).iterations_per_second)
    autocast = str(precision.autocast_dtype).removeprefix("torch.") if precision.autocast_dtype else "fp32"
    return (
        statistics.median(ours),
        statistics.median(reference),
        (f"{autocast}{' channels-last' if precision.channels_last else ''}"),
    )


def results(device: torch.device) -> list[BenchResult]:
    torch.manual_seed(0)
    data = demo_classification_data()
    images = resize_uint8(data.train.images, SIZE)
    gan_data = GanImages(images, data.train.labels, len(data.class_names))
    ours, reference, precision = gan_rates(gan_data, device)
    fid = fid_pair(data.train.images, stand_in_fakes(data.train.images))
    return [
        BenchResult.rate(
            "gan_training", ours, reference, "iterations/s",
            f"searched G {GENERATOR} / D {DISCRIMINATOR}, {SIZE}px, widths G{WIDTHS[0]}/D{WIDTHS[1]}, batch "
            f"{BATCH}, {ITERATIONS} iterations, median of 3 alternating pairs; ours {precision} with DiffAugment, EMA, "
            "balanced sampling, fused Adam, spectral norms once per weight change; reference plain fp32 hinge loop "
            "with torch's spectral norm, no DiffAugment or EMA",
        ),
        fid,
    ]  # fmt: skip


class FeaturesModule(nn.Module):
    """Our extractor as torchmetrics expects a custom feature network: uint8 (N, 3, H, W) -> (N, D)."""

    def __init__(self, model: nn.Module, num_features: int) -> None:
        super().__init__()
        self.model, self.num_features = model, num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(images.float() / 127.5 - 1.0)


def fid_pair(real: torch.Tensor, fake: torch.Tensor) -> BenchResult:
    """``fid``: seconds for the same FID by ours and by torchmetrics (values agree to ~1e-6)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    torch.manual_seed(0)
    model = build_extractor_model({"kind": "biocnn1", "num_classes": 5, "width": 32}).eval()
    extractor = domain_extractor("biocnn1", model, real.shape[1], CPU)
    started = time.perf_counter()
    ours = frechet_distance(*_moments(extractor.features(real)), *_moments(extractor.features(fake)))
    ours_seconds = time.perf_counter() - started
    metric = FrechetInceptionDistance(feature=FeaturesModule(model, 256))
    started = time.perf_counter()
    with torch.no_grad():
        for images, is_real in ((real, True), (fake, False)):
            for start in range(0, len(images), 128):
                metric.update(images[start : start + 128].permute(0, 3, 1, 2).contiguous(), real=is_real)
        reference = float(metric.compute())
    reference_seconds = time.perf_counter() - started
    return BenchResult.duration(
        "fid", ours_seconds, reference_seconds, "s",
        f"BioCNN-1 features (256-d), {len(real)} + {len(fake)} images at {real.shape[1]}px; values ours "
        f"{ours:.6f}, torchmetrics {reference:.6f} (relative difference {abs(ours - reference) / reference:.1e})",
    )  # fmt: skip


def stand_in_fakes(real: torch.Tensor) -> torch.Tensor:
    """The real images shifted in colour and blurred, so the FID is clearly non-zero."""
    blurred = F.avg_pool2d(real.permute(0, 3, 1, 2).float(), 3, 1, 1) * 0.9 + 12
    return blurred.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _moments(features):
    stats = FeatureStatistics.of(features)
    return stats.mean, stats.covariance


def main() -> None:
    from bench.results import table

    print(table(results(CPU)))


if __name__ == "__main__":
    main()
