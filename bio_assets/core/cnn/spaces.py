"""The micro (cell) and macro (network) search spaces as ``SearchSpace`` values."""

from __future__ import annotations

from bio_assets.core.cnn.genotypes import CellGenotype, MacroGenotype
from bio_assets.core.search.evolution import SearchSpace


def cell_space(min_nodes: int, max_nodes: int, mutation_probability: float) -> SearchSpace:
    nodes = (min_nodes, max_nodes)
    return SearchSpace(
        name="cell",
        random=lambda rng: CellGenotype.random(rng, nodes),
        mutate=lambda genotype, rng: genotype.mutate(rng, mutation_probability, nodes),
        parse=CellGenotype.parse,
        code=lambda genotype: genotype.code,
        key=lambda genotype: genotype.key,
    )


def macro_space(mutation_probability: float) -> SearchSpace:
    return SearchSpace(
        name="macro",
        random=MacroGenotype.random,
        mutate=lambda genotype, rng: genotype.mutate(rng, mutation_probability),
        parse=MacroGenotype.parse,
        code=lambda genotype: genotype.code,
        key=lambda genotype: genotype.key,
    )
