"""A search's training data sent to its workers once, not once per candidate.

Candidates evaluated in other processes (a local pool, a Dask cluster) each receive their evaluator
pickled. Carrying the images, that is the whole training set per candidate. Instead the search
writes its tensors once, as one safetensors file under its state folder (the shared storage every
worker of a cluster mounts), and the evaluator carries only the file's path and content digest;
each worker process reads the file once and keeps it for the candidates that follow.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from bio_assets.core.io.storage import load_weights, save_weights


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class ShippedTensors:
    """Where a search's tensors were written, and their digest (checked when a worker reads them)."""

    path: str
    digest: str

    def load(self) -> dict[str, torch.Tensor]:
        return _read(self.path, self.digest)


def ship(tensors: dict[str, torch.Tensor], folder: Path) -> ShippedTensors:
    """Write ``tensors`` once as ``folder/<digest>.safetensors`` (kept when already there)."""
    digest = tensors_digest(tensors)
    path = Path(folder) / f"{digest}.safetensors"
    if not path.exists():
        # Copies: safetensors refuses tensors that share memory (views of one image array).
        save_weights(path, {name: t.detach().cpu().clone() for name, t in tensors.items()}, {"digest": digest})
    return ShippedTensors(str(path), digest)


@lru_cache(maxsize=4)
def _read(path: str, digest: str) -> dict[str, torch.Tensor]:
    tensors, spec = load_weights(Path(path))
    if spec.get("digest") != digest or tensors_digest(tensors) != digest:
        raise ValueError(f"shipped search data {path} does not hold the tensors its digest {digest} names")
    return tensors
