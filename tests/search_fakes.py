"""Fake fitness functions for search tests: deterministic, cheap, importable by worker processes."""

from __future__ import annotations

import hashlib
import time

from bio_assets.core.cnn import spaces
from bio_assets.core.cnn.genotypes import CellGenotype
from bio_assets.core.search.evolution import SearchSpace

TARGET = CellGenotype.parse("3501-110-44-1")


def cell_space(probability: float = 0.05) -> SearchSpace:
    return spaces.cell_space(3, 6, probability)


def similarity_fitness(code: str) -> dict:
    """Landscape with one optimum: the fraction of the target's edges a cell matches."""
    cell = CellGenotype.parse(code)
    target = TARGET.edges()
    matches = sum(cell.edges().get(edge) == op for edge, op in target.items())
    return {"fitness": matches / len(target) - 0.05 * abs(cell.nodes - TARGET.nodes)}


def jittery_fitness(code: str) -> dict:
    """Same landscape, with a code-dependent sleep so workers finish out of order."""
    time.sleep(int(hashlib.sha256(code.encode()).hexdigest()[:2], 16) / 255 * 0.02)
    return similarity_fitness(code)


def macro_space(probability: float = 0.05) -> SearchSpace:
    return spaces.macro_space(probability)


class CountingMacroFitness:
    """Counts real evaluations on the small macro space (126 genotypes: repeats are certain)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, code: str) -> dict:
        from bio_assets.core.cnn.genotypes import MacroGenotype

        self.calls.append(code)
        macro = MacroGenotype.parse(code)
        return {"fitness": macro.cells / 6 - 0.1 * abs(len(macro.pools) - 1)}
