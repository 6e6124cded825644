"""Classifying a folder of image files with a trained classifier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bio_assets.core.cnn.training import predict_probabilities
from bio_assets.core.data.imaging import ImageRejected, decode_image


@dataclass(frozen=True)
class Prediction:
    file_name: str  # relative to the folder
    predicted_class: str
    probability: float


def image_files(folder: Path) -> list[Path]:
    """Every regular file under ``folder`` (recursively, sorted), hidden files and ``.md5`` sidecars left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts) and p.suffix != ".md5"
    )
    if not files:
        raise ValueError(f"{folder} holds no files to classify")
    return files


def predict_folder(
    model: nn.Module, class_names: tuple[str, ...], input_size: int, folder: Path, device: torch.device
) -> tuple[list[Prediction], list[tuple[str, str]]]:
    """(one prediction per decodable file, (file, reason) for each file that is not an image)."""
    folder = Path(folder)
    decoded, names, failures = [], [], []
    for path in image_files(folder):
        try:
            decoded.append(decode_image(path.read_bytes(), input_size))
            names.append(str(path.relative_to(folder)))
        except (ImageRejected, OSError) as err:
            failures.append((str(path.relative_to(folder)), str(err)))
    if not decoded:
        return [], failures
    probabilities = predict_probabilities(model.to(device), torch.from_numpy(np.stack(decoded)), device)  # (N, K)
    best = probabilities.argmax(1)
    return [
        Prediction(name, class_names[k], float(probabilities[i, k])) for i, (name, k) in enumerate(zip(names, best))
    ], failures
