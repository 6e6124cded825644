"""Where and how a search runs, apart from what it searches: one value built at the call site."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from bio_assets.core.cnn.training import Precision
from bio_assets.core.search.evolution import Evaluation


@dataclass(frozen=True)
class SearchRuntime:
    """The executor and its worker layout, the folder the search's state and cache live in, and the
    device and precision its candidates train with. ``on_evaluation(evaluation, done, total)``: called
    after every evaluation; ``ordering``: how results are taken (see ``run_search``)."""

    executor: Executor
    workers: int
    state_dir: Path
    device: str = "cpu"
    precision: Precision = Precision()
    threads_per_worker: int = 0
    on_evaluation: Callable[[Evaluation, int, int], None] | None = None
    ordering: str = "fifo"
    # Candidates run in other processes: the search writes its data once under state_dir and sends
    # evaluators a reference to it (core.search.shipping), not the tensors.
    ships_data: bool = False
