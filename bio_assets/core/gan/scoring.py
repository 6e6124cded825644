"""GAN inputs and scores: images at the GAN's size, class-balanced labels, and FID of a
generator's samples against real images through a feature extractor."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.gan.training import GanImages, generate
from bio_assets.core.io.records import ImageSet
from bio_assets.core.metrics.extractors import FeatureExtractor
from bio_assets.core.metrics.fid import FeatureStatistics, FidValue, fid_from_statistics


def gan_images(sets: dict[str, ImageSet], size: int) -> GanImages:
    """Images of every class (sorted names -> labels 0..K-1) at the GAN's size."""
    names = sorted(sets)
    if not names or any(len(sets[n]) == 0 for n in names):
        raise ValueError(f"every class needs images for GAN training; sizes: { {n: len(sets[n]) for n in names} }")
    images = torch.cat([resize_uint8(torch.from_numpy(sets[n].images), size) for n in names])
    labels = torch.cat([torch.full((len(sets[n]),), i, dtype=torch.int64) for i, n in enumerate(names)])
    return GanImages(images, labels, len(names))


def balanced_labels(count: int, num_classes: int) -> torch.Tensor:
    """``count`` labels cycling through the classes: as equal per class as ``count`` allows."""
    return torch.arange(count, dtype=torch.int64) % num_classes


def matched_labels(count: int, class_counts: tuple[int, ...]) -> torch.Tensor:
    """``count`` labels in the proportions of ``class_counts`` (largest remainder), class by class."""
    total = sum(class_counts)
    if total < 1 or count < 0:
        raise ValueError(f"need a non-empty reference and count >= 0, got {class_counts} and {count}")
    exact = [count * c / total for c in class_counts]
    per_class = [int(e) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda k: (per_class[k] - exact[k], k))
    for k in by_remainder[: count - sum(per_class)]:
        per_class[k] += 1
    return torch.repeat_interleave(torch.arange(len(class_counts)), torch.tensor(per_class))


def sampling_note(class_counts: tuple[int, ...] | None) -> str:
    if class_counts is None or len(set(class_counts)) <= 1:
        return "class-balanced (the reference's classes are balanced)" if class_counts else "class-balanced"
    return f"class-matched to the reference's counts {list(class_counts)}"


@dataclass
class FidScorer:
    """FID of ``samples`` generated images against fixed real statistics. The generated classes
    follow the reference's class proportions when ``class_counts`` are given and unequal (a small,
    imbalanced real train split against balanced samples shifts the FID by itself), else they are
    balanced."""

    extractor: FeatureExtractor
    reference: FeatureStatistics
    image_size: int  # the generator's output size, before the extractor resizes
    samples: int
    num_classes: int
    seed: int = 0
    class_counts: tuple[int, ...] | None = None  # real reference images per class

    @classmethod
    def against(
        cls,
        extractor: FeatureExtractor,
        real: torch.Tensor,
        samples: int,
        num_classes: int,
        seed: int = 0,
        *,
        real_labels: torch.Tensor | None = None,
    ) -> FidScorer:
        """``real``: uint8 (N, S, S, 3) reference images at the generator's size; ``real_labels`` (N,)."""
        counts = None
        if real_labels is not None:
            counts = tuple(int(c) for c in torch.bincount(real_labels, minlength=num_classes))
        return cls(
            extractor,
            FeatureStatistics.of(extractor.features(real)),
            real.shape[1],
            samples,
            num_classes,
            seed,
            counts,
        )

    def labels(self) -> torch.Tensor:
        if self.class_counts is not None and len(set(self.class_counts)) > 1:
            return matched_labels(self.samples, self.class_counts)
        return balanced_labels(self.samples, self.num_classes)

    def __call__(self, generator: nn.Module) -> FidValue:
        device = next(generator.parameters()).device
        noise = torch.Generator(device).manual_seed(self.seed)
        images = generate(generator, self.labels(), noise, device)
        fake = FeatureStatistics.of(self.extractor.features(images))
        return fid_from_statistics(
            self.reference,
            fake,
            self.extractor.name,
            self.extractor.resize_mode(self.image_size),
            sampling=sampling_note(self.class_counts),
        )


def fid_curve_rows(curve: list[tuple[int, float]]) -> list[dict]:
    return [{"iteration": int(step), "fid": round(float(value), 3)} for step, value in curve]
