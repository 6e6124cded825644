"""Training a classifier from scratch over several seeds and testing it once on the test split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from bio_assets.core.cnn.architectures import build_architecture
from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.training import Precision, TrainParams, evaluate_classifier, train_classifier
from bio_assets.core.metrics.classification import roc_report
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
        """(N,) share of seeds whose model classifies each test image correctly: the rows a paired
        comparison of two models on one test split resamples."""
        return np.mean([r.test_correct for r in self.runs], axis=0)


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
) -> ClassifierRuns:
    """Train ``spec`` ``seeds`` times (seeds params.seed, +1, ...) from random init, or from
    ``initial_state`` where names and shapes match; test each once."""
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
        report = train_classifier(model, data.train, replace(params, seed=seed), device, precision=precision)
        scores = evaluate_classifier(
            model, data.test, len(data.class_names), device, precision=precision, input_size=params.input_size
        )
        roc = roc_report(data.test.labels.numpy(), scores["probabilities"])
        run = SeedRun(
            seed,
            scores["accuracy"],
            scores["macro_f1"],
            roc["micro_auc"],
            roc["auc"],
            report.seconds,
            report.epoch_losses,
            (scores["probabilities"].argmax(1) == data.test.labels.numpy()).astype(np.float64),
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
