"""GAN training and FID: our trainer against a plain PyTorch loop for the same networks and
batch, and our FID (features -> number) against torchmetrics' FrechetInceptionDistance given
the same feature extractor. Each pair runs in the same process, one after the other."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from bench.demo_data import demo_classification_data
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.scoring import resize_uint8
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanImages, GanTrainParams, to_model_range, train_gan
from bio_assets.core.metrics.extractors import build_extractor_model, domain_extractor
from bio_assets.core.metrics.fid import FeatureStatistics, frechet_distance

GENERATOR = "{4, 236-42-6, [3, 4]}"  # 4-node cell, attention after cells 3 and 4, as the source found
DISCRIMINATOR = "{4, 235-66-7, [4]}"
WIDTHS, SIZE, BATCH, ITERATIONS = (32, 8), 32, 16, 40
CPU = torch.device("cpu")


def networks(num_classes: int) -> tuple[nn.Module, nn.Module]:
    g = build_seeded_gan(GanNetworkSpec("generator", GENERATOR, WIDTHS[0], SIZE, num_classes), 0)
    d = build_seeded_gan(GanNetworkSpec("discriminator", DISCRIMINATOR, WIDTHS[1], SIZE, num_classes), 1)
    return g, d


def plain_loop(data: GanImages) -> float:
    """What one would write by hand: uniform sampling, hinge loss, TTUR Adam; no DiffAugment, no EMA."""
    g, d = networks(data.num_classes)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-4, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(ITERATIONS):
        rows = torch.randint(0, len(data.labels), (BATCH,), generator=generator)
        real, labels = to_model_range(data.images[rows], CPU), data.labels[rows]
        fake_labels = torch.randint(0, data.num_classes, (BATCH,), generator=generator)
        with torch.no_grad():
            fake = g(torch.randn(BATCH, g.noise_dim, generator=generator), fake_labels)
        loss_d = F.relu(1 - d(real, labels)).mean() + F.relu(1 + d(fake, fake_labels)).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        fake_labels = torch.randint(0, data.num_classes, (BATCH,), generator=generator)
        loss_g = -d(g(torch.randn(BATCH, g.noise_dim, generator=generator), fake_labels), fake_labels).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return ITERATIONS / (time.perf_counter() - started)


def bench_training(data: GanImages) -> None:
    g, d = networks(data.num_classes)
    train_gan(g, d, data, GanTrainParams(iterations=3, batch_size=BATCH), CPU)  # warm-up: oneDNN primitive caches
    reference = plain_loop(data)
    g, d = networks(data.num_classes)
    ours = train_gan(g, d, data, GanTrainParams(iterations=ITERATIONS, batch_size=BATCH), CPU).iterations_per_second
    print(
        f"GAN training, {SIZE}px, widths G{WIDTHS[0]}/D{WIDTHS[1]}, batch {BATCH}, {ITERATIONS} iterations, fp32 "
        f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"  ours (DiffAugment color+translation, EMA, balanced sampling): {ours:.2f} it/s")
    print(f"  plain PyTorch loop (no DiffAugment, no EMA):                  {reference:.2f} it/s")
    print(f"  ratio ours / plain: {ours / reference:.2f}")


class FeaturesModule(nn.Module):
    """Our extractor as torchmetrics expects a custom feature network: uint8 (N, 3, H, W) -> (N, D)."""

    def __init__(self, model: nn.Module, num_features: int) -> None:
        super().__init__()
        self.model, self.num_features = model, num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(images.float() / 127.5 - 1.0)


def bench_fid(real: torch.Tensor, fake: torch.Tensor) -> None:
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
    print(f"FID, BioCNN-1 features (256-d), {len(real)} real vs {len(fake)} generated-like images at {real.shape[1]}px")
    print(f"  ours:        {ours:.6f} in {ours_seconds:.2f} s")
    print(f"  torchmetrics {reference:.6f} in {reference_seconds:.2f} s")
    print(
        f"  time ratio ours / torchmetrics: {ours_seconds / reference_seconds:.2f}; relative difference of values: "
        f"{abs(ours - reference) / reference:.2e}"
    )


def _moments(features):
    stats = FeatureStatistics.of(features)
    return stats.mean, stats.covariance


def main() -> None:
    torch.manual_seed(0)
    data = demo_classification_data()
    images = resize_uint8(data.train.images, SIZE)
    bench_training(GanImages(images, data.train.labels, len(data.class_names)))
    real = data.train.images
    # "Generated" stand-ins: the real images shifted in colour and blurred, so the FID is clearly non-zero.
    fake = (
        (F.avg_pool2d(real.permute(0, 3, 1, 2).float(), 3, 1, 1) * 0.9 + 12)
        .clamp(0, 255)
        .to(torch.uint8)
        .permute(0, 2, 3, 1)
        .contiguous()
    )
    bench_fid(real, fake)


if __name__ == "__main__":
    main()
