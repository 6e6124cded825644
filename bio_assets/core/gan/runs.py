"""One GAN training run as the assets need it: train (resumably), score by FID along the way
with one extractor, then by every available extractor at the end, and draw samples per class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bio_assets.core.cnn.training import Precision
from bio_assets.core.gan.scoring import FidScorer
from bio_assets.core.gan.training import GanImages, GanTrainParams, GanTrainReport, generate, train_gan
from bio_assets.core.metrics.fid import FidValue
from bio_assets.core.seeding import derive_seed


@dataclass(frozen=True)
class ScoredGan:
    report: GanTrainReport
    fids: dict[str, FidValue]  # extractor name -> final FID
    samples: dict[int, torch.Tensor]  # class label -> uint8 (n, S, S, 3); one entry (label 0) for unconditional models


def train_and_score(
    generator: nn.Module,
    discriminator: nn.Module,
    data: GanImages,
    params: GanTrainParams,
    *,
    device: torch.device,
    scorers: dict[str, FidScorer],
    curve_extractor: str,
    fid_every: int,
    checkpoint_path: Path | None,
    identity: dict,
    precision: Precision = Precision(),
    samples_per_class: int = 16,
    on_step=None,
) -> ScoredGan:
    """``scorers[curve_extractor]`` gives the FID curve every ``fid_every`` iterations."""
    if curve_extractor not in scorers:
        raise ValueError(f"curve extractor {curve_extractor!r} is not among the scorers {sorted(scorers)}")
    report = train_gan(
        generator,
        discriminator,
        data,
        params,
        device=device,
        precision=precision,
        checkpoint_path=checkpoint_path,
        identity=identity,
        evaluate=lambda g: scorers[curve_extractor](g).value,
        evaluate_every=fid_every,
        on_step=on_step,
    )
    fids = {name: scorer(report.sampler) for name, scorer in scorers.items()}
    conditional = getattr(report.sampler, "conditional", False)
    noise = torch.Generator(device).manual_seed(derive_seed(params.seed, "gan-samples"))
    classes = range(data.num_classes) if conditional else [0]
    samples = {
        k: generate(report.sampler, torch.full((samples_per_class,), k, dtype=torch.int64), noise, device)
        for k in classes
    }
    return ScoredGan(report, fids, samples)
