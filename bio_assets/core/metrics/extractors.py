"""Feature extractors for FID and IS: the source's domain CNNs BioCNN-1 and BioCNN-2, trained
on the real data, and (when its weights are on disk) Inception-v3 pool3."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bio_assets.core.cnn.training import (
    LabelledImages,
    Precision,
    TrainParams,
    evaluate_classifier,
    model_input,
    train_classifier,
)

EXTRACTOR_NAMES = ("biocnn1", "biocnn2")


def _conv_bn(in_channels: int, out_channels: int, stride: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), activation
    )


class BioCnn1(nn.Module):
    """Four blocks conv 3x3 (stride 2) -> BN -> LeakyReLU; features: global mean of the last block (8W)."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        channels = [3, width, 2 * width, 4 * width, 8 * width]
        self.body = nn.Sequential(*(_conv_bn(channels[i], channels[i + 1], 2, nn.LeakyReLU(0.2)) for i in range(4)))
        self.classifier = nn.Linear(channels[-1], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))  # (B, 8W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class VggBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            _conv_bn(in_channels, out_channels, 1, nn.ReLU()),
            _conv_bn(out_channels, out_channels, 1, nn.ReLU()),
            nn.MaxPool2d(2),
        )


class ResBlock(nn.Module):
    """Basic residual block with a strided 1x1 projection on the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(in_channels, out_channels, stride, nn.ReLU()),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class BioCnn2(nn.Module):
    """Alternating VGG-style and ResNet-style blocks; features: global mean of the last block (8W)."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            VggBlock(3, width),
            ResBlock(width, 2 * width, 2),
            VggBlock(2 * width, 4 * width),
            ResBlock(4 * width, 8 * width, 2),
        )
        self.classifier = nn.Linear(8 * width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))  # (B, 8W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


EXTRACTOR_MODELS: dict[str, type[nn.Module]] = {"biocnn1": BioCnn1, "biocnn2": BioCnn2}


MIN_WIDTH = 8  # at width 4, oneDNN's CPU 1x1-convolution backward (torch 2.14) hung in tests


def build_extractor_model(spec: dict) -> nn.Module:
    """``{"kind": "biocnn1"|"biocnn2", "num_classes": K, "width": W, ...}`` -> an untrained model."""
    if spec.get("kind") not in EXTRACTOR_MODELS:
        raise ValueError(f"unknown feature extractor kind {spec.get('kind')!r}; known: {EXTRACTOR_NAMES}")
    if int(spec.get("width", 0)) < MIN_WIDTH:
        raise ValueError(f"feature extractor width must be >= {MIN_WIDTH}, got {spec.get('width')}")
    return EXTRACTOR_MODELS[spec["kind"]](int(spec["num_classes"]), int(spec["width"]))


@dataclass
class FeatureExtractor:
    """uint8 images ``(N, H, W, 3)`` -> float64 features ``(N, D)``, and class probabilities for IS.

    ``encode`` takes a float batch ``(B, 3, S, S)`` in [-1, 1] at ``input_size`` and returns
    features; ``classify`` (optional) returns logits.
    """

    name: str
    input_size: int
    encode: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    precision: Precision = Precision()
    classify: Callable[[torch.Tensor], torch.Tensor] | None = None
    batch_size: int = 128
    resizes_itself: str = ""  # set when the extractor resizes internally (Inception: "bilinear ->299")

    def resize_mode(self, image_size: int) -> str:
        if self.resizes_itself:
            return f"{self.resizes_itself} from {image_size}"
        return "none" if image_size == self.input_size else f"bilinear {image_size}->{self.input_size}"

    @torch.no_grad()
    def _batches(self, images: torch.Tensor, function: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"{self.name} takes uint8 images (N, H, W, 3), got {tuple(images.shape)} {images.dtype}")
        outputs = []
        for start in range(0, len(images), self.batch_size):
            size = None if self.resizes_itself else self.input_size
            x = model_input(images[start : start + self.batch_size], self.device, self.precision, size)
            outputs.append(function(x).float().cpu())
        return torch.cat(outputs).double().numpy()

    def features(self, images: torch.Tensor) -> np.ndarray:
        return self._batches(images, self.encode)

    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        if self.classify is None:
            raise ValueError(f"extractor {self.name} has no classifier head for class probabilities")
        return self._batches(images, lambda x: torch.softmax(self.classify(x).float(), dim=1))


def without_channels_last(precision: Precision) -> Precision:
    """oneDNN (torch 2.14, CPU) hangs in BioCNN-2's strided residual block on channels-last
    tensors with few channels, so the extractors keep the default memory format."""
    return Precision(channels_last=False, autocast_dtype=precision.autocast_dtype)


def domain_extractor(
    name: str, model: nn.Module, input_size: int, device: torch.device, precision: Precision = Precision()
) -> FeatureExtractor:
    """A trained BioCNN as a frozen extractor in eval mode on ``device``."""
    precision = without_channels_last(precision)
    model = model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return FeatureExtractor(name, input_size, model.features, device, precision, classify=model)


@dataclass(frozen=True)
class TrainedExtractor:
    spec: dict  # build_extractor_model's spec plus input_size
    model: nn.Module
    val_accuracy: float
    seconds: float


def train_extractor(
    kind: str,
    train: LabelledImages,
    val: LabelledImages,
    *,
    num_classes: int,
    width: int,
    params: TrainParams,
    device: torch.device,
    precision: Precision = Precision(),
) -> TrainedExtractor:
    """Train a BioCNN as a classifier on real training images; its validation accuracy says how
    much its features know about the classes."""
    spec = {"kind": kind, "num_classes": num_classes, "width": width, "input_size": int(train.images.shape[1])}
    precision = without_channels_last(precision)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed)
        model = build_extractor_model(spec)
    report = train_classifier(model, train, params, device, precision=precision)
    scores = evaluate_classifier(model, val, num_classes, device, precision=precision)
    return TrainedExtractor(spec, model, float(scores["accuracy"]), report.seconds)


def pack_extractors(trained: dict[str, TrainedExtractor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Several trained extractors as one ``(state_dict, spec)``: tensors prefixed by name."""
    tensors = {f"{name}.{k}": v for name, t in trained.items() for k, v in t.model.state_dict().items()}
    spec = {
        "kind": "feature_extractors",
        "extractors": {name: t.spec for name, t in trained.items()},
        "val_accuracy": {name: t.val_accuracy for name, t in trained.items()},
    }
    return tensors, spec


def unpack_extractor(state_dict: dict[str, torch.Tensor], spec: dict, name: str) -> nn.Module:
    """One trained extractor model out of ``pack_extractors``' output."""
    specs = spec.get("extractors", {})
    if name not in specs:
        raise ValueError(f"feature extractor {name!r} is not among the trained ones: {sorted(specs)}")
    model = build_extractor_model(specs[name])
    model.load_state_dict({k[len(name) + 1 :]: v for k, v in state_dict.items() if k.startswith(name + ".")})
    return model
