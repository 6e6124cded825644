"""Affine augmentation ("affine distortions") that enlarges a class's training split.

Each augmented image draws every operation (rotation, horizontal flip, vertical flip,
scale, shear, elastic distortion) with its own probability; parameters come from an
injected ``torch.Generator`` and are applied with torchvision's ``transforms.v2``
functional kernels, so the result is reproducible without touching global RNG state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bio_assets.core.io.records import ImageSet


@dataclass(frozen=True)
class AugmentParams:
    target_per_class: int = 200
    probability: float = 0.5
    max_rotation_deg: float = 30.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    max_shear_deg: float = 10.0
    elastic_alpha: float = 20.0  # displacement strength in pixels, as torchvision's ElasticTransform
    elastic_sigma: float = 4.0  # smoothness of the displacement field in pixels
    seed: int = 0

    def __post_init__(self) -> None:
        if self.target_per_class < 1:
            raise ValueError(f"target_per_class must be at least 1, got {self.target_per_class}")
        if not 0.0 < self.probability <= 1.0:
            raise ValueError(f"probability must be in (0, 1], got {self.probability}")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        if self.elastic_sigma <= 0 or self.elastic_alpha < 0:
            raise ValueError("elastic_sigma must be > 0 and elastic_alpha >= 0")


OPERATIONS: tuple[str, ...] = ("rotate", "hflip", "vflip", "scale", "shear", "elastic")


def _kernels():
    """torchvision's v2 kernels and interpolation modes; imported here, not at module load, because
    importing torchvision costs seconds in every process that loads the code location."""
    import torchvision.transforms.v2.functional as kernels
    from torchvision.transforms import InterpolationMode

    return kernels, InterpolationMode


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=generator))


def _border_fill(image: torch.Tensor) -> torch.Tensor:
    """Median colour ``(3, 1, 1)`` of the image border: the background rotated-in corners take."""
    border = torch.cat([image[:, 0, :], image[:, -1, :], image[:, :, 0], image[:, :, -1]], dim=1)  # (3, 4W)
    return border.median(dim=1).values[:, None, None]


def augment_image(
    image: torch.Tensor, params: AugmentParams, generator: torch.Generator
) -> tuple[torch.Tensor, list[str]]:
    """Apply a random subset of the operations to one uint8 ``(3, H, W)`` image.

    Draws again when no operation was picked, so an augmented image is never a copy.
    Warps run on ``image - fill`` with zero padding and add ``fill`` back: since
    interpolation is linear this equals padding with ``fill`` exactly, without the dark
    seam that torchvision's fill blending leaves along the edge of rotated-in corners.
    """
    TF, InterpolationMode = _kernels()
    while True:
        chosen = [op for op in OPERATIONS if float(torch.rand((), generator=generator)) < params.probability]
        if chosen:
            break
    pixels = image.float()  # (3, H, W) in 0..255
    fill = _border_fill(pixels)
    out = pixels - fill
    if "hflip" in chosen:
        out = TF.horizontal_flip(out)
    if "vflip" in chosen:
        out = TF.vertical_flip(out)
    angle = _uniform(generator, -params.max_rotation_deg, params.max_rotation_deg) if "rotate" in chosen else 0.0
    scale = _uniform(generator, *params.scale_range) if "scale" in chosen else 1.0
    shear = (
        [
            _uniform(generator, -params.max_shear_deg, params.max_shear_deg),
            _uniform(generator, -params.max_shear_deg, params.max_shear_deg),
        ]
        if "shear" in chosen
        else [0.0, 0.0]
    )
    if {"rotate", "scale", "shear"} & set(chosen):
        out = TF.affine(
            out, angle=angle, translate=[0, 0], scale=scale, shear=shear, interpolation=InterpolationMode.BILINEAR
        )
    if "elastic" in chosen:
        out = TF.elastic(
            out, _elastic_displacement(out.shape[-2:], params, generator), interpolation=InterpolationMode.BILINEAR
        )
    return (out + fill).round().clamp(0, 255).to(torch.uint8), chosen


def _elastic_displacement(size: torch.Size, params: AugmentParams, generator: torch.Generator) -> torch.Tensor:
    """Smooth random displacement field ``(1, H, W, 2)`` in normalized coordinates (as ElasticTransform)."""
    TF, _ = _kernels()
    height, width = int(size[0]), int(size[1])
    kernel = int(8 * params.elastic_sigma + 1) | 1
    fields = []
    for extent in (width, height):
        noise = torch.rand((1, 1, height, width), generator=generator) * 2 - 1
        smooth = TF.gaussian_blur(noise, [kernel, kernel], [params.elastic_sigma, params.elastic_sigma])
        fields.append(smooth * params.elastic_alpha / extent)
    return torch.cat(fields, dim=1).permute(0, 2, 3, 1)


def augment_class(
    train: ImageSet,
    params: AugmentParams,
    generator: torch.Generator,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImageSet:
    """Originals of the train split plus augmented copies until ``target_per_class`` images.

    Sources are drawn in shuffled rounds so every original is used about equally
    often. A class already at or above the target keeps all its originals unchanged.
    """
    if len(train) == 0:
        raise ValueError(f"class {train.class_name!r} has an empty train split; nothing to augment")
    missing = max(params.target_per_class - len(train), 0)
    sources: list[int] = []
    while len(sources) < missing:
        sources.extend(torch.randperm(len(train), generator=generator).tolist())
    sources = sources[:missing]
    new_images = []
    new_names = []
    for done, source in enumerate(sources, start=1):
        chw = torch.from_numpy(train.images[source]).permute(2, 0, 1)  # (3, H, W)
        out, ops = augment_image(chw, params, generator)
        new_images.append(out.permute(1, 2, 0).numpy())
        new_names.append(f"{train.file_names[source]}#aug{done:05d}[{'+'.join(ops)}]")
        if on_progress is not None and (done % 50 == 0 or done == missing):
            on_progress(done, missing)
    images = np.concatenate([train.images, np.stack(new_images)]) if new_images else train.images
    return ImageSet(
        images=images.astype(np.uint8),
        file_names=np.concatenate([train.file_names, np.array(new_names, dtype=np.str_)]),
        # Augmented rows carry the hash of the original they came from: leakage checks by hash still hold.
        sha256=np.concatenate([train.sha256, train.sha256[np.array(sources, dtype=np.int64)]]),
        class_name=train.class_name,
        source_index=np.concatenate([np.full(len(train), -1), np.array(sources, dtype=np.int64)])
        if sources
        else np.full(len(train), -1),
    )
