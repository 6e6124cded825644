"""Pickle-free persistence of records (``.npz``) and model weights (safetensors), written atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save as serialize_safetensors

from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.records import RECORD_TYPES

TYPE_KEY = "__record_type__"


def save_record(path: Path, record: object) -> None:
    """Save a registered record as ``.npz`` with its type name embedded."""
    type_name = getattr(record, "type_name", None)
    if type_name not in RECORD_TYPES or not isinstance(record, RECORD_TYPES[type_name]):
        raise TypeError(f"cannot store {type(record).__name__}: not a registered record type")
    arrays = dict(record.to_arrays())  # type: ignore[attr-defined]
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"record field {key!r} has dtype object, which would need pickle")
    arrays[TYPE_KEY] = np.array(type_name, dtype=np.str_)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_record(path: Path) -> object:
    """Load a record saved by ``save_record``; refuses pickled content and unknown types."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    type_name = str(arrays.pop(TYPE_KEY, ""))
    if type_name not in RECORD_TYPES:
        raise ValueError(f"{path} holds unknown record type {type_name!r}; known: {sorted(RECORD_TYPES)}")
    return RECORD_TYPES[type_name].from_arrays(arrays)


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], spec: dict) -> None:
    """Save weights as safetensors with the JSON spec that rebuilds the model in its header."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    payload = serialize_safetensors(tensors, metadata={"spec": json.dumps(spec, sort_keys=True)})
    atomic_write(path, lambda handle: handle.write(payload))


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Return ``(state_dict, spec)`` from a file written by ``save_weights``."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if "spec" not in metadata:
        raise ValueError(f"{path} has no model spec in its safetensors header")
    return load_safetensors(str(path)), json.loads(metadata["spec"])


@dataclass(frozen=True)
class ModelWeights:
    """A model as ``state_dict`` plus the JSON-able spec that rebuilds its architecture."""

    state_dict: dict[str, torch.Tensor]
    spec: dict


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A user's weights file: safetensors, or a torch ``state_dict`` loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        return load_safetensors(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state_dict of tensors")
    return state
