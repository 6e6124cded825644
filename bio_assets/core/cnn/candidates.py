"""Evaluating one search candidate: build its network, train it, score it on validation."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bio_assets.core.cnn.networks import NetworkSpec, SearchedNetwork
from bio_assets.core.cnn.training import LabelledImages, Precision, TrainParams, evaluate_classifier, train_classifier
from bio_assets.core.search.shipping import ShippedTensors, ship
from bio_assets.core.seeding import derive_seed


@dataclass(frozen=True)
class SearchData:
    """Training and validation images of every class, held in memory (never the test split)."""

    train: LabelledImages
    val: LabelledImages
    class_names: tuple[str, ...]
    version: str  # changes whenever any image changes; part of the cache key

    def resolve(self) -> SearchData:
        return self

    def shipped(self, folder: Path) -> ShippedSearchData:
        """This data written once under ``folder``, for evaluators sent to other processes."""
        tensors = {
            "train_images": self.train.images, "train_labels": self.train.labels,
            "val_images": self.val.images, "val_labels": self.val.labels,
        }  # fmt: skip
        return ShippedSearchData(ship(tensors, folder), self.class_names, self.version)


@dataclass(frozen=True)
class ShippedSearchData:
    """A :class:`SearchData` by reference: what a worker process reads once (``core.search.shipping``)."""

    tensors: ShippedTensors
    class_names: tuple[str, ...]
    version: str

    def resolve(self) -> SearchData:
        t = self.tensors.load()
        train, val = (LabelledImages(t[f"{s}_images"], t[f"{s}_labels"]) for s in ("train", "val"))
        return SearchData(train, val, self.class_names, self.version)


def build_seeded(spec: NetworkSpec, seed: int) -> SearchedNetwork:
    """The network with weights initialised from ``seed`` (global RNG forked and restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SearchedNetwork(spec)


@dataclass(frozen=True)
class CandidateEvaluator:
    """Picklable ``code -> result`` for executors: trains the network a genotype code stands for.

    ``searching`` says which part of the network the code is: ``"cell"`` (micro search, the
    network is ``fixed_macro`` with that cell) or ``"macro"`` (with ``fixed_cell``).
    """

    data: SearchData | ShippedSearchData
    train_params: TrainParams
    channels: int
    searching: str
    fixed_cell: str = ""
    fixed_macro: str = "1-[]"
    device: str = "cpu"
    precision: Precision = Precision()
    threads: int = 0
    # Trainings per candidate, each from its own seed; the fitness is their mean validation accuracy.
    # One training's accuracy on a few dozen validation images is mostly seed noise at small data.
    fitness_repeats: int = 1

    def spec(self, code: str) -> NetworkSpec:
        cell, macro = (code, self.fixed_macro) if self.searching == "cell" else (self.fixed_cell, code)
        return NetworkSpec(cell=cell, macro=macro, channels=self.channels, num_classes=len(self.data.class_names))

    def __call__(self, code: str) -> dict:
        if self.threads:
            torch.set_num_threads(self.threads)  # workers of a pool share the cores
        started = time.perf_counter()
        device, data = torch.device(self.device), self.data.resolve()
        accuracies, f1s, losses, speeds = [], [], [], []
        for repeat in range(self.fitness_repeats):
            # Repeat 0 keeps the seeds of a single-training search, so its results stay comparable.
            parts = ("candidate", code) if repeat == 0 else ("candidate", code, str(repeat))
            seed = derive_seed(self.train_params.seed, *parts)
            model = build_seeded(self.spec(code), seed)
            params = self.train_params if repeat == 0 else replace(self.train_params, seed=seed)
            report = train_classifier(model, data.train, params, device, precision=self.precision)
            scores = evaluate_classifier(
                model,
                data.val,
                len(data.class_names),
                device,
                precision=self.precision,
                input_size=self.train_params.input_size,
            )
            labels = data.val.labels.numpy()
            picked = np.clip(scores["probabilities"][np.arange(len(labels)), labels], 1e-12, 1.0)
            accuracies.append(scores["accuracy"])
            f1s.append(scores["macro_f1"])
            losses.append(float(-np.mean(np.log(picked))))
            speeds.append(report.images_per_second)
        return {
            "fitness": float(np.mean(accuracies)),
            "val_macro_f1": float(np.mean(f1s)),
            "val_loss": float(np.mean(losses)),
            "fitness_repeats": self.fitness_repeats,
            "train_images_per_second": float(np.mean(speeds)),
            "seconds": time.perf_counter() - started,
        }
