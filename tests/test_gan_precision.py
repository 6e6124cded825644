"""GAN training in bf16 (channels-last, autocast) follows the fp32 FID trajectory: at every
evaluation its FID is within 10% of fp32's from the same seed (measured: at most 0.7%), and closer
to it than an fp32 run of another seed. That is what lets CPUs with bf16 units train GANs in bf16
(``gan_precision_for``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bio_assets.core.cnn.training import Precision
from bio_assets.core.data.demo_data import DEMO_CLASSES, render_cell_image
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.scoring import FidScorer
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanImages, GanTrainParams, train_gan
from bio_assets.core.hardware import cpu_has_bf16_units, gan_precision_for
from bio_assets.core.metrics.extractors import FeatureExtractor

CPU = torch.device("cpu")
BF16 = Precision(channels_last=True, autocast_dtype=torch.bfloat16)
ITERATIONS, EVERY = 45, 15


def fid_trajectory(precision: Precision, seed: int) -> list[float]:
    rng = np.random.default_rng(0)
    images = [render_cell_image(name, rng, 32) for name in DEMO_CLASSES[:2] for _ in range(24)]
    data = GanImages(torch.from_numpy(np.stack(images)), torch.arange(48) // 24, 2)
    # Features: the image averaged down to 4x4 pixels (48 values): colour and layout.
    extractor = FeatureExtractor("pixels_4x4", 32, lambda x: F.avg_pool2d(x.float(), 8).flatten(1), CPU)
    scorer = FidScorer.against(extractor, data.images, 48, 2, seed=0)
    g = build_seeded_gan(GanNetworkSpec("generator", "{3, 26-6, []}", 16, 32, 2, noise_dim=32), seed)
    d = build_seeded_gan(GanNetworkSpec("discriminator", "{3, 26-6, []}", 8, 32, 2), seed + 1)
    params = GanTrainParams(iterations=ITERATIONS, batch_size=16, seed=seed)
    report = train_gan(
        g, d, data, params, device=CPU, precision=precision, evaluate=lambda m: scorer(m).value, evaluate_every=EVERY
    )
    return [value for _, value in report.curve]


@pytest.mark.slow(seconds=8)
@pytest.mark.skipif(
    not cpu_has_bf16_units(),
    reason="GAN training runs in fp32 on CPUs without bf16 units (gan_precision_for); bf16 is emulated there",
)
def test_bf16_fid_trajectory_follows_fp32_closer_than_another_seed():
    fp32, fp32_other_seed, bf16 = (
        fid_trajectory(Precision(), 0),
        fid_trajectory(Precision(), 1),
        fid_trajectory(BF16, 0),
    )
    assert len(bf16) == ITERATIONS // EVERY
    assert bf16[-1] < bf16[0] and fp32[-1] < fp32[0]  # both keep learning
    for a, b, low in zip(fp32, fp32_other_seed, bf16):
        assert abs(low - a) <= 0.1 * a and abs(low - a) < abs(b - a), (fp32, fp32_other_seed, bf16)


def test_cpus_with_bf16_units_train_gans_in_bf16_and_the_rest_in_fp32():
    precision = gan_precision_for(CPU, amp=True)
    expected = BF16 if cpu_has_bf16_units() else Precision()
    assert precision == expected
    assert gan_precision_for(CPU, amp=False) == Precision()
