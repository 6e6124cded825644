"""Deterministic seeds derived from a base seed and names (classes, stages)."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *parts: str) -> int:
    """A 63-bit seed from ``seed`` and ``parts``, stable across processes and platforms."""
    text = ":".join([str(seed), *parts])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def torch_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
