"""The source's cell code shared by the CNN and GAN cells: one operation digit per edge of a
DAG, grouped by *source* node, groups joined by ``-`` (``12-6``: 0->1 1, 0->2 2, 1->2 6)."""

from __future__ import annotations

import re


def edge_list(nodes: int) -> list[tuple[int, int]]:
    """Edges (i, j), i < j, in code order: grouped by source node."""
    return [(i, j) for i in range(nodes - 1) for j in range(i + 1, nodes)]


def parse_cell_code(code: str, example: str) -> tuple[int, tuple[int, ...]]:
    """``(nodes, digits)`` of a cell code; ``ValueError`` names the code and the expected groups."""
    if not isinstance(code, str) or not re.fullmatch(r"[0-9]+(-[0-9]+)+", code.strip()):
        raise ValueError(f"cell code {code!r} must be digit groups joined by '-', e.g. {example!r}")
    groups = code.strip().split("-")
    nodes = len(groups) + 1
    lengths = [len(g) for g in groups]
    if lengths != list(range(nodes - 1, 0, -1)):
        raise ValueError(
            f"cell code {code!r}: a {nodes}-node cell needs groups of {list(range(nodes - 1, 0, -1))} digits "
            f"(one per edge from each source node), got {lengths}"
        )
    return nodes, tuple(int(d) for d in "".join(groups))


def format_cell_code(nodes: int, ops: tuple[int, ...]) -> str:
    digits = "".join(str(d) for d in ops)
    groups, start = [], 0
    for size in range(nodes - 1, 0, -1):
        groups.append(digits[start : start + size])
        start += size
    return "-".join(groups)


def live_edges(nodes: int, ops: tuple[int, ...], none_digit: int) -> dict[tuple[int, int], int]:
    """Edges other than ``none_digit`` on some path from the input (node 0) to the output (last node)."""
    out = nodes - 1
    active = {e: d for e, d in zip(edge_list(nodes), ops) if d != none_digit}
    from_input = {0}
    for j in range(1, nodes):
        if any((i, j) in active for i in from_input):
            from_input.add(j)
    to_output = {out}
    for i in range(out - 1, -1, -1):
        if any((i, j) in active for j in to_output):
            to_output.add(i)
    return {(i, j): d for (i, j), d in active.items() if i in from_input and j in to_output}
