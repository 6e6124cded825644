"""Classic CNN baselines and the source's fixed CNN of the optimizer comparison (METHOD 2a, 3).

Published numbers are kept here, beside the models they describe, for the reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bio_assets.core.profiles import DEMO_BASELINE_OVERRIDES, DEMO_BASELINES, PROFILE_SETTINGS, profile_setting


class LeNet5(nn.Module):
    """LeNet-5 for RGB: conv 5x5 (6) -> pool -> conv 5x5 (16) -> pool -> 120 -> 84 -> K.

    An adaptive pool before the classifier keeps the 16x5x5 features at any input size
    (32x32 is LeNet's own; the demo profile trains at the dataset resolution).
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d(5),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.Tanh(),
            nn.Linear(120, 84),
            nn.Tanh(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))  # (B, K)


class SourceFixedCNN(nn.Module):
    """The source's optimizer-comparison CNN; needs 64x64x3 input (flatten 512 x 2 x 2 = 2048)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, kernel, stride=2, padding=kernel // 2),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
            ]

        self.net = nn.Sequential(
            *block(3, 64, 5),
            *block(64, 128, 5),
            nn.MaxPool2d(2),
            nn.Dropout(0.5),
            *block(128, 256, 3),
            *block(256, 512, 3),
            nn.Dropout(0.5),
            nn.Flatten(),
            nn.Linear(2048, num_classes),
        )

    def forward(self, x):
        return self.net(x)  # (B, K) logits; softmax lives in the loss


@dataclass(frozen=True)
class Baseline:
    torchvision_name: str | None  # None: written out here
    input_size: int  # the model's native input (paper profile)
    epochs: int
    batch_size: int
    source_accuracy: float  # the source's Table 2.8, 4-class cytology


BASELINES: dict[str, Baseline] = {
    "lenet5": Baseline(None, 32, 30, 10, 0.65),
    "alexnet": Baseline("alexnet", 227, 50, 12, 0.77),
    "vgg16": Baseline("vgg16", 224, 50, 8, 0.91),
    "resnet18": Baseline("resnet18", 224, 50, 12, 0.90),
    "resnet50": Baseline("resnet50", 224, 50, 12, 0.93),
    "mobilenet_v3": Baseline("mobilenet_v3_large", 224, 50, 12, 0.85),
}

# Source's Table 1.3: test accuracy of the fixed CNN, 30 epochs, batch 64, library defaults.
SOURCE_OPTIMIZER_ACCURACY: dict[str, float] = {
    "adam": 0.7625,
    "sgd": 0.7462,
    "rmsprop": 0.895,
    "nadam": 0.66,
    "adadelta": 0.8425,
    "adagrad": 0.9488,
    "adamax": 0.9162,
}
OPTIMIZER_EPOCHS, OPTIMIZER_BATCH = 30, 64


def build_baseline(name: str, num_classes: int) -> nn.Module:
    if name == "lenet5":
        return LeNet5(num_classes)
    if name == "source_fixed_cnn":
        return SourceFixedCNN(num_classes)
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)} and source_fixed_cnn")
    import torchvision  # seconds to import: only where a torchvision model is built

    return torchvision.models.get_model(BASELINES[name].torchvision_name, weights=None, num_classes=num_classes)


def baseline_defaults(name: str, profile: str) -> dict[str, int | float | bool]:
    """Training settings of a baseline: the source's per-model values (paper), or the demo profile's."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    if profile == "paper":
        baseline = BASELINES[name]
        return {
            "epochs": baseline.epochs,
            "batch_size": baseline.batch_size,
            "input_size": baseline.input_size,
            "seeds": int(profile_setting("paper", "classifier", "seeds")),
            "learning_rate": 1e-3,
            "precise_bn": False,
        }
    if profile not in PROFILE_SETTINGS:
        raise ValueError(f"unknown profile {profile!r}")
    return {**DEMO_BASELINES, **DEMO_BASELINE_OVERRIDES.get(name, {})}
