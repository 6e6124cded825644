"""One call that runs (or resumes) a micro or macro CNN search on in-memory data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bio_assets.core.cnn.candidates import CandidateEvaluator, SearchData
from bio_assets.core.cnn.genotypes import MAX_NODES, MIN_NODES
from bio_assets.core.cnn.spaces import cell_space, macro_space
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.search.cache import EvaluationCache, settings_hash
from bio_assets.core.search.evolution import EvolutionParams, SearchResult, run_search
from bio_assets.core.search.runtime import SearchRuntime


@dataclass(frozen=True)
class CnnSearchRequest:
    searching: str  # "cell" (micro) or "macro"
    evolution: EvolutionParams
    training: TrainParams
    channels: int
    min_nodes: int = MIN_NODES
    max_nodes: int = MAX_NODES
    fixed_cell: str = ""  # the cell every macro candidate uses
    fixed_macro: str = "1-[]"  # the network every cell candidate sits in
    fitness_repeats: int = 1  # trainings per candidate, their mean validation accuracy its fitness

    def __post_init__(self) -> None:
        if self.searching not in ("cell", "macro"):
            raise ValueError(f"searching must be 'cell' or 'macro', got {self.searching!r}")
        if self.searching == "macro" and not self.fixed_cell:
            raise ValueError("a macro search needs the searched cell (fixed_cell)")
        if self.fitness_repeats < 1:
            raise ValueError(f"fitness_repeats must be >= 1, got {self.fitness_repeats}")
        if not MIN_NODES <= self.min_nodes <= self.max_nodes <= MAX_NODES:
            raise ValueError(f"node range must lie in {MIN_NODES}..{MAX_NODES}, got {self.min_nodes}..{self.max_nodes}")

    def with_strategy(self, strategy: str) -> CnnSearchRequest:
        """The same search (budget, seed, training) under another strategy, e.g. the random-search control."""
        return replace(self, evolution=replace(self.evolution, strategy=strategy))

    def candidate_settings(self) -> dict:
        """What determines one candidate's result (the cache key), apart from its genotype."""
        repeats = {"fitness_repeats": self.fitness_repeats} if self.fitness_repeats > 1 else {}
        return {
            **repeats,  # absent at 1, so caches of single-training searches stay valid
            "searching": self.searching,
            "training": asdict(self.training),
            "channels": self.channels,
            "fixed_cell": self.fixed_cell,
            "fixed_macro": self.fixed_macro,
        }


@dataclass(frozen=True)
class CnnSearchRun:
    result: SearchResult
    candidate_settings_hash: str
    state_path: Path


def search_cnn(
    data: SearchData,
    request: CnnSearchRequest,
    runtime: SearchRuntime,
) -> CnnSearchRun:
    """Search with aging evolution (or random search); resumes from ``runtime.state_dir`` when interrupted."""
    precision, state_dir = runtime.precision, Path(runtime.state_dir)
    space = (
        cell_space(request.min_nodes, request.max_nodes, request.evolution.mutation_probability)
        if request.searching == "cell"
        else macro_space(request.evolution.mutation_probability)
    )
    evaluator = CandidateEvaluator(
        data=data.shipped(state_dir / "data") if runtime.ships_data else data,
        train_params=request.training,
        channels=request.channels,
        searching=request.searching,
        fixed_cell=request.fixed_cell,
        fixed_macro=request.fixed_macro,
        device=runtime.device,
        precision=precision,
        threads=runtime.threads_per_worker,
        fitness_repeats=request.fitness_repeats,
    )
    candidate_hash = settings_hash({**request.candidate_settings(), "precision": str(precision)})
    run_hash = settings_hash(
        {
            "candidate": candidate_hash,
            "evolution": asdict(request.evolution),
            "nodes": [request.min_nodes, request.max_nodes],
            "workers": runtime.workers,
            "ordering": runtime.ordering,
        }
    )
    cache = EvaluationCache(state_dir / f"{request.searching}-cache.json", f"{candidate_hash}/{data.version}")
    state_path = state_dir / f"{request.searching}-state-{run_hash}-{data.version}.json"
    result = run_search(
        space,
        evaluator,
        request.evolution,
        runtime.executor,
        workers=runtime.workers,
        cache=cache,
        state_path=state_path,
        on_evaluation=runtime.on_evaluation,
        ordering=runtime.ordering,
    )
    return CnnSearchRun(result, candidate_hash, state_path)
