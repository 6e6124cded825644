"""Training a classifier from scratch over several seeds and testing it once on the test split."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from bio_assets.core.cnn.architectures import build_architecture
from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.training import (
    LabelledImages,
    Precision,
    TrainParams,
    evaluate_classifier,
    predict_probabilities,
    train_classifier,
)
from bio_assets.core.metrics.classification import balanced_accuracy, roc_report
from bio_assets.core.seeding import derive_seed


@dataclass
class SeedRun:
    seed: int
    test_accuracy: float
    test_macro_f1: float
    test_auc_micro: float
    class_auc: dict[int, float]
    train_seconds: float
    epoch_losses: list[float]
    test_correct: np.ndarray | None = None  # (N,) 1.0 where the top class is the true one, per test image
    test_balanced_accuracy: float = float("nan")
    steps: int = 0  # optimizer steps of the training
    # (M,) correctness on each further labelled set (train_and_test's also_score), by its name.
    scored_correct: dict[str, np.ndarray] = field(default_factory=dict)
    selected_pass: int | None = None  # the pass validation chose (TrainParams.select_on_validation)
    val_accuracy: float | None = None  # the kept weights' validation accuracy (only with that selection)


@dataclass
class ClassifierRuns:
    runs: list[SeedRun]
    first_state_dict: dict[str, torch.Tensor]  # weights of the first seed's model
    first_confusion: np.ndarray
    first_roc: dict

    def summary(self, field: str) -> tuple[float, float]:
        values = np.array([getattr(r, field) for r in self.runs])
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    def test_correct(self) -> np.ndarray:
        """(S, N) correctness of each seed's model on each test image."""
        return np.stack([r.test_correct for r in self.runs])

    def scored_correct(self, name: str) -> np.ndarray:
        """(S, M) correctness of each seed's model on the further set ``name``."""
        return np.stack([r.scored_correct[name] for r in self.runs])

    @property
    def steps(self) -> int:
        return self.runs[0].steps


def load_matching(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of ``state`` whose name and shape match; return the names skipped
    (e.g. an ImageNet head of 1000 classes on a 5-class model)."""
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    return sorted(set(state) - set(usable))


def train_and_test(
    spec: dict,
    data: ClassificationData,
    params: TrainParams,
    *,
    seeds: int,
    device: torch.device,
    precision: Precision = Precision(),
    on_seed: Callable[[SeedRun], None] | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
    also_score: Mapping[str, LabelledImages] | None = None,
) -> ClassifierRuns:
    """Train ``spec`` ``seeds`` times (seeds params.seed, +1, ...) from random init, or from
    ``initial_state`` where names and shapes match; test each once. The initialization depends on
    the seed and ``spec`` only, so two calls with one spec and seed start from the same weights.
    ``also_score``: further labelled sets each model classifies (e.g. synthetic images by the class
    they were generated for)."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    runs: list[SeedRun] = []
    first: dict = {}
    for offset in range(seeds):
        seed = params.seed + offset
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "init", str(spec)))
            model = build_architecture(spec)
        if initial_state is not None:
            load_matching(model, initial_state)
        report = train_classifier(
            model, data.train, replace(params, seed=seed), device, precision=precision, validation=data.val
        )
        scores = evaluate_classifier(
            model, data.test, len(data.class_names), device, precision=precision, input_size=params.input_size
        )
        labels = data.test.labels.numpy()
        roc = roc_report(labels, scores["probabilities"])
        predictions = scores["probabilities"].argmax(1)
        run = SeedRun(
            seed,
            scores["accuracy"],
            scores["macro_f1"],
            roc["micro_auc"],
            roc["auc"],
            report.seconds,
            report.epoch_losses,
            (predictions == labels).astype(np.float64),
            balanced_accuracy(labels, predictions),
            report.steps,
            {
                name: _correct(model, images, device, precision=precision, input_size=params.input_size)
                for name, images in (also_score or {}).items()
            },
            report.selected_pass,
            report.selected_val_accuracy,
        )
        runs.append(run)
        if not first:
            first = {
                "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "confusion": scores["confusion"],
                "roc": roc,
            }
        if on_seed is not None:
            on_seed(run)
    return ClassifierRuns(runs, first["state"], first["confusion"], first["roc"])


def _correct(
    model: torch.nn.Module, images: LabelledImages, device: torch.device, *, precision: Precision, input_size
) -> np.ndarray:
    """(M,) 1.0 where ``model``'s top class is the image's label."""
    if len(images.labels) == 0:
        return np.zeros(0)
    probabilities = predict_probabilities(model, images.images, device, precision=precision, input_size=input_size)
    return (probabilities.argmax(1) == images.labels.numpy()).astype(np.float64)
