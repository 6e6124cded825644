"""Operations, cells and networks of the CNN search space, built from genotypes.

Shapes: every cell keeps ``(B, C, H, W)``; the stem maps ``(B, 3, H, W)`` to C channels;
a macro pool halves H and W; the head maps ``(B, C, h, w)`` to ``(B, num_classes)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from bio_assets.core.cnn.genotypes import CNN_OPERATIONS, CellGenotype, MacroGenotype
from bio_assets.core.cnn.pooling import AveragePool3x3


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (stride 1, same padding, no bias) -> BatchNorm: the convolution block of a cell."""

    def __init__(self, *, channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, kernel_size, stride=1, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(channels),
        )


# Operation name -> factory taking keyword arguments; "none" edges are simply absent.
OPERATION_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "skip_connect": lambda *, channels: nn.Identity(),
    "conv_1x1": lambda *, channels: ReLUConvBN(channels=channels, kernel_size=1),
    "conv_3x3": lambda *, channels: ReLUConvBN(channels=channels, kernel_size=3),
    "avg_pool_3x3": lambda *, channels: AveragePool3x3(),
    "max_pool_3x3": lambda *, channels: nn.MaxPool2d(3, stride=1, padding=1),
}
if set(OPERATION_FACTORIES) != set(CNN_OPERATIONS) - {"none"}:
    raise RuntimeError("OPERATION_FACTORIES and CNN_OPERATIONS disagree")


class Cell(nn.Module):
    """A DAG cell: node j is the sum of its incoming edges; built from the canonical cell,
    so equivalent genotypes give identical modules. Keeps ``(B, C, H, W)``."""

    def __init__(self, genotype: CellGenotype, channels: int) -> None:
        super().__init__()
        canonical = genotype.canonical
        self.nodes = canonical.nodes if canonical is not None else 2
        live = canonical.live_edges() if canonical is not None else {}
        self.edge_keys = sorted(live)
        self.ops = nn.ModuleDict(
            {f"{i}_{j}": OPERATION_FACTORIES[CNN_OPERATIONS[d]](channels=channels) for (i, j), d in live.items()}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: list[torch.Tensor | None] = [x] + [None] * (self.nodes - 1)
        for i, j in self.edge_keys:  # sorted by source: every input of j is final before use
            contribution = self.ops[f"{i}_{j}"](values[i])
            values[j] = contribution if values[j] is None else values[j] + contribution
        output = values[-1]
        return torch.zeros_like(x) if output is None else output


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that rebuilds a searched network; stored beside its weights."""

    cell: str
    macro: str = "1-[]"
    channels: int = 16
    num_classes: int = 5

    def to_dict(self) -> dict:
        return {"kind": "searched_cnn", **asdict(self)}

    @classmethod
    def from_dict(cls, spec: dict) -> NetworkSpec:
        if spec.get("kind") != "searched_cnn":
            raise ValueError(f"not a searched CNN spec: {spec}")
        return cls(**{k: v for k, v in spec.items() if k != "kind"})


class SearchedNetwork(nn.Module):
    """Stem conv 3x3 -> cells (max-pool 3x3/2 after the cells in P) -> BN -> ReLU -> GAP -> linear.

    The micro-search network is the macro network ``1-[]``.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        cell = CellGenotype.parse(spec.cell)
        macro = MacroGenotype.parse(spec.macro)
        self.spec = spec
        self.stem = nn.Sequential(nn.Conv2d(3, spec.channels, 3, padding=1, bias=False), nn.BatchNorm2d(spec.channels))
        body: list[nn.Module] = []
        for index in range(macro.cells):
            body.append(Cell(cell, spec.channels))
            if index in macro.pools:
                body.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.body = nn.Sequential(*body)
        self.head = nn.Sequential(
            nn.BatchNorm2d(spec.channels),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(spec.channels, spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))  # (B, num_classes) logits
