"""Cell (micro) and network (macro) genotypes of the CNN search, as immutable values.

Cell code (the source's): one digit per edge, grouped by *source* node, groups joined by
``-``. For 5 nodes ``3501-110-44-1`` means 0->1 conv_3x3, 0->2 max_pool, 0->3 none,
0->4 skip, 1->2 skip, 1->3 skip, 1->4 none, 2->3 avg_pool, 2->4 avg_pool, 3->4 skip.
Macro code: ``N-[P]``, N cells in sequence with a 3x3 stride-2 max-pool after each cell
index in P (0-based), e.g. ``5-[1]``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bio_assets.core.search.cell_codes import edge_list, format_cell_code, live_edges, parse_cell_code

# Index = digit in the code (METHOD section 3: NAS-Bench-201 order plus max-pool).
CNN_OPERATIONS: tuple[str, ...] = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3", "max_pool_3x3")
MIN_NODES, MAX_NODES = 3, 6
MIN_CELLS, MAX_CELLS = 1, 6
DEAD_CELL_KEY = "dead"  # every cell whose output cannot see its input


@dataclass(frozen=True)
class CellGenotype:
    """A DAG of ``nodes`` nodes; ``ops[k]`` is the operation digit of ``edge_list(nodes)[k]``."""

    nodes: int
    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if not MIN_NODES <= self.nodes <= MAX_NODES:
            raise ValueError(f"a cell has {MIN_NODES}..{MAX_NODES} nodes, got {self.nodes}")
        expected = self.nodes * (self.nodes - 1) // 2
        if len(self.ops) != expected:
            raise ValueError(f"a {self.nodes}-node cell has {expected} edges, got {len(self.ops)} operations")
        bad = [d for d in self.ops if not 0 <= d < len(CNN_OPERATIONS)]
        if bad:
            raise ValueError(
                f"operation digits must be 0..{len(CNN_OPERATIONS) - 1} ({', '.join(CNN_OPERATIONS)}), got {bad}"
            )

    @classmethod
    def parse(cls, code: str) -> CellGenotype:
        """Parse the source's code, e.g. ``3501-110-44-1``; ``ValueError`` says what is wrong."""
        return cls(*parse_cell_code(code, "012-23-4"))

    @property
    def code(self) -> str:
        return format_cell_code(self.nodes, self.ops)

    def __str__(self) -> str:
        return self.code

    def edges(self) -> dict[tuple[int, int], str]:
        """(source, target) -> operation name, for every edge including ``none``."""
        return {edge: CNN_OPERATIONS[d] for edge, d in zip(edge_list(self.nodes), self.ops)}

    def to_nb201(self) -> str:
        """NAS-Bench-201 style string, grouped by *target* node: ``|conv_3x3~0|+|...~0|...~1|``."""
        edges = self.edges()
        return "+".join("|" + "|".join(f"{edges[(i, j)]}~{i}" for i in range(j)) + "|" for j in range(1, self.nodes))

    @classmethod
    def from_nb201(cls, text: str) -> CellGenotype:
        nodes = text.count("+") + 2
        edges: dict[tuple[int, int], int] = {}
        for j, group in enumerate(text.split("+"), start=1):
            items = [item for item in group.split("|") if item]
            if len(items) != j:
                raise ValueError(f"NAS-Bench-201 string {text!r}: node {j} needs {j} inputs, got {len(items)}")
            for item in items:
                name, _, source = item.partition("~")
                if name not in CNN_OPERATIONS or not source.isdigit() or int(source) >= j:
                    raise ValueError(f"NAS-Bench-201 string {text!r}: bad edge {item!r}; operations: {CNN_OPERATIONS}")
                if (int(source), j) in edges:
                    raise ValueError(f"NAS-Bench-201 string {text!r}: node {j} takes node {source} twice")
                edges[(int(source), j)] = CNN_OPERATIONS.index(name)
        return cls(nodes, tuple(edges[e] for e in edge_list(nodes)))

    def live_edges(self) -> dict[tuple[int, int], int]:
        """Non-``none`` edges on some path from the input (node 0) to the output (last node)."""
        return live_edges(self.nodes, self.ops, none_digit=0)

    @cached_property
    def canonical(self) -> CellGenotype | None:
        """The smallest equivalent cell, or ``None`` when the output cannot see the input.

        Equivalent cells compute the same function: edges that cannot influence the output
        are dropped, intermediate nodes left without live edges are removed, and of all
        relabelings of the remaining intermediate nodes that keep edges pointing forward
        the one with the smallest code is chosen.
        """
        live = self.live_edges()
        if not live:
            return None
        used = sorted({0, self.nodes - 1} | {n for edge in live for n in edge})
        nodes = max(len(used), MIN_NODES)
        middle = used[1:-1]
        best: CellGenotype | None = None
        for order in itertools.permutations(middle):
            label = {0: 0, self.nodes - 1: nodes - 1, **{old: new for new, old in enumerate(order, start=1)}}
            relabeled = {(label[i], label[j]): d for (i, j), d in live.items()}
            if any(i >= j for i, j in relabeled):
                continue
            candidate = CellGenotype(nodes, tuple(relabeled.get(e, 0) for e in edge_list(nodes)))
            if best is None or candidate.code < best.code:
                best = candidate
        return best

    @property
    def key(self) -> str:
        """Canonical key: equal for cells that compute the same function."""
        return DEAD_CELL_KEY if self.canonical is None else self.canonical.code

    @classmethod
    def random(cls, rng: np.random.Generator, nodes: tuple[int, int] = (MIN_NODES, MAX_NODES)) -> CellGenotype:
        n = int(rng.integers(nodes[0], nodes[1] + 1))
        return cls(n, tuple(int(d) for d in rng.integers(0, len(CNN_OPERATIONS), n * (n - 1) // 2)))

    def mutate(
        self, rng: np.random.Generator, probability: float, nodes: tuple[int, int] = (MIN_NODES, MAX_NODES)
    ) -> CellGenotype:
        """Re-draw the node count and each digit with ``probability``; repeat until the key changes."""
        while True:
            n = int(rng.integers(nodes[0], nodes[1] + 1)) if rng.random() < probability else self.nodes
            old = dict(zip(edge_list(self.nodes), self.ops))
            ops = []
            for i, j in edge_list(n):
                # Edges into the output keep their meaning when the node count changes.
                source = (i, self.nodes - 1) if j == n - 1 else (i, j)
                digit = old.get(source)
                if digit is None or rng.random() < probability:
                    digit = int(rng.integers(0, len(CNN_OPERATIONS)))
                ops.append(digit)
            child = CellGenotype(n, tuple(ops))
            if child.key != self.key:
                return child


@dataclass(frozen=True)
class MacroGenotype:
    """``cells`` cells in sequence with a stride-2 max-pool after each index in ``pools``."""

    cells: int
    pools: tuple[int, ...]

    def __post_init__(self) -> None:
        if not MIN_CELLS <= self.cells <= MAX_CELLS:
            raise ValueError(f"a network has {MIN_CELLS}..{MAX_CELLS} cells, got {self.cells}")
        if list(self.pools) != sorted(set(self.pools)) or any(not 0 <= p < self.cells for p in self.pools):
            raise ValueError(
                f"pool positions must be distinct, sorted cell indices in 0..{self.cells - 1}, got {list(self.pools)}"
            )

    @classmethod
    def parse(cls, code: str) -> MacroGenotype:
        match = (
            re.fullmatch(r"\s*(\d+)\s*-\s*\[\s*((?:\d+\s*(?:,\s*\d+\s*)*)?)\]\s*", code)
            if isinstance(code, str)
            else None
        )
        if match is None:
            raise ValueError(f"network code {code!r} must look like 'N-[P]', e.g. '5-[1]' or '4-[0,2]' or '3-[]'")
        pools = tuple(int(p) for p in match.group(2).split(",")) if match.group(2).strip() else ()
        return cls(int(match.group(1)), pools)

    @property
    def code(self) -> str:
        return f"{self.cells}-[{','.join(str(p) for p in self.pools)}]"

    def __str__(self) -> str:
        return self.code

    @property
    def key(self) -> str:
        return self.code

    @classmethod
    def random(cls, rng: np.random.Generator, pool_probability: float = 0.3) -> MacroGenotype:
        cells = int(rng.integers(MIN_CELLS, MAX_CELLS + 1))
        return cls(cells, tuple(i for i in range(cells) if rng.random() < pool_probability))

    def mutate(self, rng: np.random.Generator, probability: float) -> MacroGenotype:
        """Re-draw N and flip each pool bit with ``probability``; repeat until the code changes."""
        while True:
            cells = int(rng.integers(MIN_CELLS, MAX_CELLS + 1)) if rng.random() < probability else self.cells
            bits = [(i in self.pools) if i < self.cells else bool(rng.random() < 0.3) for i in range(cells)]
            bits = [(not b) if rng.random() < probability else b for b in bits]
            child = MacroGenotype(cells, tuple(i for i, b in enumerate(bits) if b))
            if child != self:
                return child
