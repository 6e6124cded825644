"""Generator and discriminator genotypes of the GAN search, ``{N, C, [ATTN]}``, as immutable values.

``N`` nodes per cell (3..5), ``C`` the cell code (one digit per edge grouped by source node,
as in the CNN cell; digits are the source's 1-based GAN operations below), ``ATTN`` the
1-based indices of the cells after which a self-attention block is added. The same cell
genotype is used at all four resolutions. ``{3, 12-6, [1, 2]}``: 0->1 conv_1x1,
0->2 conv_3x3, 1->2 skip, attention after cells 1 and 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bio_assets.core.search.cell_codes import edge_list, format_cell_code, live_edges, parse_cell_code

# Digit d names GAN_OPERATIONS[d - 1] (the source's numbering).
GAN_OPERATIONS: tuple[str, ...] = (
    "conv_1x1",
    "conv_3x3",
    "conv_5x5",
    "sep_conv_3x3",
    "zero",
    "skip",
    "max_pool_3x3",
    "avg_pool_3x3",
)
ZERO_DIGIT = 5
ROLE_DIGITS: dict[str, tuple[int, ...]] = {"generator": (1, 2, 3, 4, 5, 6), "discriminator": (1, 2, 3, 4, 5, 6, 7, 8)}
MIN_NODES, MAX_NODES = 3, 5
NUM_CELLS = 4  # one cell per resolution of both skeletons
ATTENTION_PROBABILITY = 0.25  # per cell, for random genotypes
FIXED_DISCRIMINATOR = "{4, 235-66-7, [4]}"  # METHOD section 4: stage 1's hand-set discriminator
_CODE = re.compile(r"\s*\{\s*(\d+)\s*,\s*([0-9-]+)\s*,\s*\[\s*((?:\d+\s*(?:,\s*\d+\s*)*)?)\]\s*\}\s*")


@dataclass(frozen=True)
class GanGenotype:
    """One GAN network's cell (``nodes``, ``ops`` per edge) and its attention positions."""

    role: str  # "generator" or "discriminator": which digits are allowed
    nodes: int
    ops: tuple[int, ...]
    attention: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLE_DIGITS:
            raise ValueError(f"role must be one of {sorted(ROLE_DIGITS)}, got {self.role!r}")
        if not MIN_NODES <= self.nodes <= MAX_NODES:
            raise ValueError(f"a GAN cell has {MIN_NODES}..{MAX_NODES} nodes, got {self.nodes}")
        expected = self.nodes * (self.nodes - 1) // 2
        if len(self.ops) != expected:
            raise ValueError(f"a {self.nodes}-node cell has {expected} edges, got {len(self.ops)} operation digits")
        allowed = ROLE_DIGITS[self.role]
        bad = sorted({d for d in self.ops if d not in allowed})
        if bad:
            names = ", ".join(f"{d} {GAN_OPERATIONS[d - 1]}" for d in allowed)
            raise ValueError(f"{self.role} operation digits must be {allowed[0]}..{allowed[-1]} ({names}); got {bad}")
        if list(self.attention) != sorted(set(self.attention)) or any(not 1 <= a <= NUM_CELLS for a in self.attention):
            raise ValueError(
                f"attention positions must be distinct, sorted cell indices in 1..{NUM_CELLS}, got "
                f"{list(self.attention)}"
            )

    @classmethod
    def parse(cls, code: str, role: str) -> GanGenotype:
        """Parse ``{N, C, [ATTN]}``; ``ValueError`` says what is wrong."""
        match = _CODE.fullmatch(code) if isinstance(code, str) else None
        if match is None:
            raise ValueError(f"{role} code {code!r} must look like '{{N, CELL, [ATTN]}}', e.g. '{{3, 12-6, [1, 2]}}'")
        nodes, ops = parse_cell_code(match.group(2), "12-6")
        if nodes != int(match.group(1)):
            raise ValueError(f"{role} code {code!r}: N is {match.group(1)} but the cell code has {nodes} nodes")
        attention = tuple(int(a) for a in match.group(3).split(",")) if match.group(3).strip() else ()
        return cls(role, nodes, ops, attention)

    @property
    def cell_code(self) -> str:
        return format_cell_code(self.nodes, self.ops)

    @property
    def code(self) -> str:
        return f"{{{self.nodes}, {self.cell_code}, [{', '.join(str(a) for a in self.attention)}]}}"

    def __str__(self) -> str:
        return self.code

    def edges(self) -> dict[tuple[int, int], str]:
        """(source, target) -> operation name for every edge, ``zero`` included."""
        return {edge: GAN_OPERATIONS[d - 1] for edge, d in zip(edge_list(self.nodes), self.ops)}

    def live_edges(self) -> dict[tuple[int, int], int]:
        return live_edges(self.nodes, self.ops, none_digit=ZERO_DIGIT)

    @property
    def key(self) -> str:
        """Equal for genotypes that build the same network: edges off every input-output path become zero."""
        live = self.live_edges()
        attention = f"[{', '.join(str(a) for a in self.attention)}]"
        if not live:
            return f"{{dead, {attention}}}"  # every cell is the identity through its residual
        ops = tuple(live.get(e, ZERO_DIGIT) for e in edge_list(self.nodes))
        return f"{{{self.nodes}, {format_cell_code(self.nodes, ops)}, {attention}}}"

    @classmethod
    def random(
        cls, rng: np.random.Generator, role: str, nodes: tuple[int, int] = (MIN_NODES, MAX_NODES)
    ) -> GanGenotype:
        n = int(rng.integers(nodes[0], nodes[1] + 1))
        digits = ROLE_DIGITS[role]
        ops = tuple(int(digits[i]) for i in rng.integers(0, len(digits), n * (n - 1) // 2))
        attention = tuple(c for c in range(1, NUM_CELLS + 1) if rng.random() < ATTENTION_PROBABILITY)
        return cls(role, n, ops, attention)

    def mutate(
        self, rng: np.random.Generator, probability: float, nodes: tuple[int, int] = (MIN_NODES, MAX_NODES)
    ) -> GanGenotype:
        """Re-draw N, each digit and each attention bit with ``probability``; repeat until the key changes."""
        digits = ROLE_DIGITS[self.role]
        while True:
            n = int(rng.integers(nodes[0], nodes[1] + 1)) if rng.random() < probability else self.nodes
            old = dict(zip(edge_list(self.nodes), self.ops))
            ops = []
            for i, j in edge_list(n):
                # Edges into the output keep their meaning when the node count changes.
                digit = old.get((i, self.nodes - 1) if j == n - 1 else (i, j))
                if digit is None or rng.random() < probability:
                    digit = int(digits[rng.integers(0, len(digits))])
                ops.append(digit)
            bits = [(c in self.attention) != bool(rng.random() < probability) for c in range(1, NUM_CELLS + 1)]
            child = GanGenotype(
                self.role, n, tuple(ops), tuple(c for c, on in zip(range(1, NUM_CELLS + 1), bits) if on)
            )
            if child.key != self.key:
                return child
