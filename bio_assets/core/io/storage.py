"""Pickle-free persistence of records (``.npz``) and model weights (safetensors), written atomically."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save as serialize_safetensors

from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.records import RECORD_TYPES

TYPE_KEY = "__record_type__"


def record_bytes(record: object) -> bytes:
    """A registered record as ``.npz`` bytes with its type name embedded (no pickle)."""
    type_name = getattr(record, "type_name", None)
    if type_name not in RECORD_TYPES or not isinstance(record, RECORD_TYPES[type_name]):
        raise TypeError(f"cannot store {type(record).__name__}: not a registered record type")
    arrays = dict(record.to_arrays())  # type: ignore[attr-defined]
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"record field {key!r} has dtype object, which would need pickle")
    arrays[TYPE_KEY] = np.array(type_name, dtype=np.str_)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def record_from_bytes(data: bytes, where: str = "record") -> object:
    """A record from ``record_bytes``' output; refuses pickled content and unknown types."""
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        arrays = {key: loaded[key] for key in loaded.files}
    type_name = str(arrays.pop(TYPE_KEY, ""))
    if type_name not in RECORD_TYPES:
        raise ValueError(f"{where} holds unknown record type {type_name!r}; known: {sorted(RECORD_TYPES)}")
    return RECORD_TYPES[type_name].from_arrays(arrays)


def save_record(path: Path, record: object) -> None:
    """Save a registered record as ``.npz`` with its type name embedded, atomically."""
    payload = record_bytes(record)
    atomic_write(path, lambda handle: handle.write(payload))


def load_record(path: Path) -> object:
    """Load a record saved by ``save_record``; refuses pickled content and unknown types."""
    return record_from_bytes(Path(path).read_bytes(), str(path))


def weights_bytes(state_dict: dict[str, torch.Tensor], spec: dict) -> bytes:
    """Weights as safetensors bytes with the JSON spec that rebuilds the model in the header."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    return serialize_safetensors(tensors, metadata={"spec": json.dumps(spec, sort_keys=True)})


def weights_from_bytes(data: bytes, where: str = "weights") -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, spec)`` from ``weights_bytes``' output. The header is read first: its first
    8 bytes give its length (little endian), then JSON with ``__metadata__``."""
    header_length = int.from_bytes(data[:8], "little")
    if header_length <= 0 or header_length > len(data) - 8:
        raise ValueError(f"{where} is not a safetensors file")
    metadata = json.loads(data[8 : 8 + header_length]).get("__metadata__") or {}
    if "spec" not in metadata:
        raise ValueError(f"{where} has no model spec in its safetensors header")
    return load_safetensors_bytes(data), json.loads(metadata["spec"])


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], spec: dict) -> None:
    """Save weights as safetensors with the JSON spec that rebuilds the model in its header."""
    payload = weights_bytes(state_dict, spec)
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
