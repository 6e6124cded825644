"""The stored outcome of a search: the best genotype and the whole history, as arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bio_assets.core.io.records import register_record
from bio_assets.core.search.evolution import SearchResult


@register_record
@dataclass(frozen=True)
class SearchOutcome:
    type_name: ClassVar[str] = "search_outcome/v1"

    best_code: str
    codes: np.ndarray  # (E,) genotype codes in evaluation order
    fitness: np.ndarray  # (E,) validation accuracy
    macro_f1: np.ndarray  # (E,)
    cached: np.ndarray  # (E,) bool: result from the cache, nothing trained
    settings_hash: str
    data_version: str

    @classmethod
    def from_result(cls, result: SearchResult, settings_hash: str, data_version: str) -> SearchOutcome:
        history = result.history
        return cls(
            best_code=result.best.code,
            codes=np.array([e.code for e in history], dtype=np.str_),
            fitness=np.array([e.fitness for e in history]),
            macro_f1=np.array([e.metrics.get("val_macro_f1", np.nan) for e in history]),
            cached=np.array([e.cached for e in history]),
            settings_hash=settings_hash,
            data_version=data_version,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "best_code": np.array(self.best_code, dtype=np.str_),
            "codes": self.codes,
            "fitness": self.fitness,
            "macro_f1": self.macro_f1,
            "cached": self.cached,
            "settings_hash": np.array(self.settings_hash, dtype=np.str_),
            "data_version": np.array(self.data_version, dtype=np.str_),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> SearchOutcome:
        return cls(
            best_code=str(arrays["best_code"]),
            codes=arrays["codes"],
            fitness=arrays["fitness"],
            macro_f1=arrays["macro_f1"],
            cached=arrays["cached"],
            settings_hash=str(arrays["settings_hash"]),
            data_version=str(arrays["data_version"]),
        )
