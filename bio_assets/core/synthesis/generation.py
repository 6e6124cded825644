"""Synthetic images from a trained conditional generator: rebuilt from its stored spec,
sampled with seeded noise per class, and brought to the published size."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.gan.networks import GanNetworkSpec, build_searched
from bio_assets.core.gan.training import generate
from bio_assets.core.seeding import derive_seed

PUBLISHED_SIZE = 64  # the source's published 64x64 PNGs


@dataclass(frozen=True)
class TrainedGenerator:
    model: nn.Module
    spec: GanNetworkSpec
    class_names: tuple[str, ...]
    checkpoint_sha256: str

    def class_index(self, class_name: str) -> int:
        if class_name not in self.class_names:
            raise ValueError(f"the generator has no class {class_name!r}; it knows {list(self.class_names)}")
        return self.class_names.index(class_name)


def state_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over tensor names, shapes, dtypes and bytes, in name order: the weights' identity."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def load_trained_generator(state_dict: dict[str, torch.Tensor], spec: dict, device: torch.device) -> TrainedGenerator:
    """The generator ``trained_gan`` stored (``state_dict`` + spec with ``class_names``), in eval mode."""
    if spec.get("kind") != "searched_generator" or "class_names" not in spec:
        raise ValueError(f"not a trained conditional generator: spec kind {spec.get('kind')!r}, keys {sorted(spec)}")
    network_spec = GanNetworkSpec(
        **{k: spec[k] for k in ("role", "genotype", "width", "image_size", "num_classes", "noise_dim")}
    )
    model = build_searched(network_spec)
    model.load_state_dict(state_dict)
    return TrainedGenerator(model.to(device).eval(), network_spec, tuple(spec["class_names"]), state_sha256(state_dict))


def class_seed(seed: int, class_name: str) -> int:
    """The noise seed of one class: classes are independent, so one class can be regenerated alone."""
    return derive_seed(seed, "synthetic", class_name)


def synthesize(
    generator: TrainedGenerator,
    class_name: str,
    count: int,
    *,
    seed: int,
    device: torch.device,
    size: int = PUBLISHED_SIZE,
) -> np.ndarray:
    """``count`` images of ``class_name`` as uint8 ``(count, size, size, 3)``; the same seed gives the same images."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    labels = torch.full((count,), generator.class_index(class_name), dtype=torch.int64)
    noise = torch.Generator(device).manual_seed(class_seed(seed, class_name))
    images = generate(generator.model, labels, noise, device)  # (count, S, S, 3) at the GAN's size
    return resize_uint8(images, size).numpy()


def resize_mode(generator: TrainedGenerator, size: int = PUBLISHED_SIZE) -> str:
    native = generator.spec.image_size
    return "none" if native == size else f"bilinear {native}->{size}"
