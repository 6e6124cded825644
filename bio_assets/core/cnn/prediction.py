"""Classifying a folder of image files with a trained classifier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bio_assets.core.cnn.training import predict_probabilities
from bio_assets.core.data.imaging import DecodeLimits, ImageRejected, decode_image, read_image_file
from bio_assets.core.data.walk import candidate_files


@dataclass(frozen=True)
class Prediction:
    file_name: str  # relative to the folder
    predicted_class: str
    probability: float


def image_files(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """(every regular file under ``folder``, recursively and sorted, hidden files and ``.md5``
    sidecars left out; (file, reason) of each link that leads outside ``folder`` or entry that
    is no regular file)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files, issues = candidate_files(folder, "**/*", folder)
    files = [p for p in files if p.suffix != ".md5"]
    skipped = [(i.file_name, i.reason) for i in issues if i.reason != "hidden file"]
    if not files:
        raise ValueError(f"{folder} holds no files to classify")
    return files, skipped


def predict_folder(
    model: nn.Module,
    class_names: tuple[str, ...],
    input_size: int,
    folder: Path,
    device: torch.device,
    *,
    limits: DecodeLimits = DecodeLimits(),
) -> tuple[list[Prediction], list[tuple[str, str]]]:
    """(one prediction per decodable file, (file, reason) for each file that is not an image).

    A file that fails to decode, however it fails, costs that file only.
    """
    folder = Path(folder)
    decoded, names = [], []
    paths, failures = image_files(folder)
    for path in paths:
        name = path.relative_to(folder).as_posix()
        try:
            decoded.append(decode_image(read_image_file(path, limits), input_size, limits))
            names.append(name)
        except ImageRejected as err:
            failures.append((name, err.reason))
        except OSError as err:
            failures.append((name, f"unreadable: {err.strerror}"))
    if not decoded:
        return [], failures
    probabilities = predict_probabilities(model.to(device), torch.from_numpy(np.stack(decoded)), device)  # (N, K)
    best = probabilities.argmax(1)
    return [
        Prediction(name, class_names[k], float(probabilities[i, k])) for i, (name, k) in enumerate(zip(names, best))
    ], failures
