"""Quality gates of a synthetic class: memorization of training images and leakage of held-out
images, both judged in a feature space against the real images' own spacing.

Distances are Euclidean between feature vectors ``(N, D)``. The scale is the median distance
from each real training image to its nearest other real training image, so one threshold
(a ratio) serves every extractor: a synthetic image at ratio 0 is a copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bio_assets.core.metrics.fid import FeatureStatistics, fid_from_statistics
from bio_assets.core.synthesis.files import FolderDefects


def nearest_distances(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each query's nearest reference: shapes ``(M,)``, ``(M,)``."""
    if len(references) == 0:
        raise ValueError("nearest-neighbour distances need at least one reference vector")
    distances = torch.cdist(
        torch.from_numpy(np.asarray(queries, np.float64)), torch.from_numpy(np.asarray(references, np.float64))
    )  # (M, N)
    best = distances.min(dim=1)
    return best.values.numpy(), best.indices.numpy()


def typical_spacing(references: np.ndarray) -> float:
    """Median distance from each reference to its nearest other reference (> 0)."""
    references = np.asarray(references, np.float64)
    if len(references) < 2:
        raise ValueError(f"the spacing of real images needs at least 2 of them, got {len(references)}")
    distances = torch.cdist(torch.from_numpy(references), torch.from_numpy(references))
    distances.fill_diagonal_(float("inf"))
    spacing = float(distances.min(dim=1).values.median())
    if spacing <= 0:
        raise ValueError("real training images include exact feature duplicates; their spacing is 0")
    return spacing


def memorization(fake: np.ndarray, train: np.ndarray, min_ratio: float) -> dict:
    """Passes when every synthetic image is at least ``min_ratio`` x the typical spacing from every training image."""
    spacing = typical_spacing(train)
    distances, nearest = nearest_distances(fake, train)
    ratios = distances / spacing
    too_close = np.flatnonzero(ratios < min_ratio)
    return {
        "passed": not len(too_close),
        "num_too_close": int(len(too_close)),
        "min_distance_ratio": float(ratios.min()),
        "median_distance_ratio": float(np.median(ratios)),
        "threshold": min_ratio,
        "real_spacing": spacing,
        "too_close": [int(i) for i in too_close[:20]],
        "nearest_train": [int(nearest[i]) for i in too_close[:20]],
    }


def pixel_hashes(images: np.ndarray) -> list[str]:
    """SHA-256 of each uint8 image's pixel bytes: equal pixels, equal hash."""
    return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images]


def held_out_leaks(
    fake_images: np.ndarray,
    fake: np.ndarray,
    held_images: np.ndarray,
    held: np.ndarray,
    *,
    spacing: float,
    min_ratio: float,
) -> dict:
    """Passes when no synthetic image equals a validation/test image pixel for pixel (at the
    synthetic size) or lies within ``min_ratio`` x ``spacing`` of one in feature space."""
    if len(held_images) == 0:
        return {
            "passed": True,
            "num_exact": 0,
            "num_near": 0,
            "num_held_out": 0,
            "min_distance_ratio": float("inf"),
            "threshold": min_ratio,
        }
    held_hashes = set(pixel_hashes(held_images))
    exact = [i for i, digest in enumerate(pixel_hashes(fake_images)) if digest in held_hashes]
    ratios = nearest_distances(fake, held)[0] / spacing
    near = np.flatnonzero(ratios < min_ratio)
    return {
        "passed": not exact and not len(near),
        "num_exact": len(exact),
        "num_near": int(len(near)),
        "num_held_out": len(held_images),
        "min_distance_ratio": float(ratios.min()),
        "threshold": min_ratio,
        "exact": exact[:20],
        "near": [int(i) for i in near[:20]],
    }


GATE_NAMES = ("synthetic_class_fid", "synthetic_not_memorized", "synthetic_files_intact", "synthetic_not_in_held_out")


@dataclass(frozen=True)
class GateThresholds:
    max_class_fid: float
    min_distance_ratio: float
    num_requested: int


@dataclass(frozen=True)
class GateInputs:
    """What the gates of one class judge: the staged images and the real images to compare with.

    ``features`` maps uint8 images ``(N, S, S, 3)`` to the gate extractor's features ``(N, D)``.
    ``held_out`` holds the validation images of every class, never the test split: a gate that
    changes the training data must not look at the images accuracy is measured on.
    """

    fake: np.ndarray  # (N, 64, 64, 3) uint8, as staged
    train: np.ndarray  # (M, S, S, 3) uint8, this class's real train split
    held_out: np.ndarray  # (K, S, S, 3) uint8, every class's validation split
    features: Callable[[np.ndarray], np.ndarray]
    extractor: str


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    metadata: dict


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    from bio_assets.core.data.resize import resize_uint8

    if len(images) == 0 or images.shape[1] == size:
        return images
    return resize_uint8(torch.from_numpy(np.ascontiguousarray(images)), size).numpy()


def evaluate_gates(
    inputs: GateInputs, thresholds: GateThresholds, *, staged: FolderDefects, num_staged: int
) -> list[GateResult]:
    """The four quality gates on a staged class, in ``GATE_NAMES`` order.

    ``staged`` are the defects of the staging folder checked against the files just written
    (count, decoding at the published size, each ``.md5`` file)."""
    size = inputs.fake.shape[1]
    train = _resize(inputs.train, size)
    fake_features, train_features = inputs.features(inputs.fake), inputs.features(train)
    fid = fid_from_statistics(
        FeatureStatistics.of(inputs.features(inputs.train)),
        FeatureStatistics.of(fake_features),
        inputs.extractor,
        f"real {inputs.train.shape[1]} px, synthetic {size} px",
    )
    memorized = memorization(fake_features, train_features, thresholds.min_distance_ratio)
    held = _resize(inputs.held_out, size)
    leaks = held_out_leaks(
        inputs.fake,
        fake_features,
        held,
        inputs.features(held) if len(held) else np.zeros((0, fake_features.shape[1])),
        spacing=typical_spacing(train_features),
        min_ratio=thresholds.min_distance_ratio,
    )
    count_ok = num_staged == thresholds.num_requested
    return [
        GateResult(
            "synthetic_class_fid",
            fid.value < thresholds.max_class_fid,
            {"class_fid": round(fid.value, 4), "threshold": thresholds.max_class_fid, "fid_provenance": fid.to_json()},
        ),
        GateResult("synthetic_not_memorized", memorized.pop("passed"), memorized),
        GateResult(
            "synthetic_files_intact",
            count_ok and staged.ok,
            {"num_requested": thresholds.num_requested, "num_staged": num_staged, **staged.counts()},
        ),
        GateResult("synthetic_not_in_held_out", leaks.pop("passed"), {**leaks, "held_out_split": "validation"}),
    ]
