"""Aging (regularized) evolution and random search, generic over the genotype.

Candidates are evaluated through a ``concurrent.futures.Executor`` with up to ``workers``
in flight. ``ordering="fifo"`` (default) takes results in submission order: candidate
``t + workers`` is bred from the population as it stands after result ``t``, so for a
fixed worker count the history does not depend on timing, and a resumed search repeats an
uninterrupted one; a worker that finishes early waits for the oldest candidate.
``ordering="as_completed"`` takes each result as soon as it arrives and breeds at once, so
every worker stays busy; the history then depends on timing.
State (history, population, candidates in flight, RNG state) is written atomically after
every evaluation; a killed search re-submits only the candidates that were in flight.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.search.cache import EvaluationCache

G = TypeVar("G")
STRATEGIES = ("aging", "random")
ORDERINGS = ("fifo", "as_completed")


@dataclass(frozen=True)
class SearchSpace(Generic[G]):
    """How to make, change, name and read genotypes of one search space."""

    name: str
    random: Callable[[np.random.Generator], G]
    mutate: Callable[[G, np.random.Generator], G]
    parse: Callable[[str], G]
    code: Callable[[G], str] = str
    key: Callable[[G], str] = str


@dataclass(frozen=True)
class EvolutionParams:
    population_size: int = 100
    cycles: int = 30
    sample_size: int = 25
    mutation_probability: float = 0.05
    strategy: str = "aging"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.population_size < 1 or self.cycles < 0 or not 1 <= self.sample_size <= self.population_size:
            raise ValueError(f"need population_size >= 1, cycles >= 0, 1 <= sample_size <= population_size; got {self}")
        if not 0.0 < self.mutation_probability <= 1.0:
            raise ValueError(f"mutation_probability must be in (0, 1], got {self.mutation_probability}")

    @property
    def total_evaluations(self) -> int:
        return self.population_size + self.cycles


@dataclass
class Evaluation:
    """One evaluated candidate. ``cached``: its result came from the cache, nothing was trained."""

    index: int
    code: str
    key: str
    origin: str  # "random" or "mutation"
    parent: int | None
    fitness: float
    metrics: dict
    seconds: float
    cached: bool


@dataclass
class SearchState:
    params: dict
    history: list[Evaluation] = field(default_factory=list)
    population: list[int] = field(default_factory=list)  # history indices, oldest first
    pending: list[dict] = field(default_factory=list)  # candidates generated, not yet evaluated
    next_index: int = 0
    rng_state: dict | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "history": [asdict(e) for e in self.history]})

    @classmethod
    def from_json(cls, text: str) -> SearchState:
        raw = json.loads(text)
        raw["history"] = [Evaluation(**e) for e in raw["history"]]
        return cls(**raw)


@dataclass(frozen=True)
class SearchResult:
    history: list[Evaluation]
    best: Evaluation

    @property
    def num_trainings(self) -> int:
        return sum(not e.cached for e in self.history)


def run_search(
    space: SearchSpace,
    evaluate: Callable[[str], dict],
    params: EvolutionParams,
    executor: Executor,
    *,
    workers: int = 1,
    cache: EvaluationCache | None = None,
    state_path: Path | None = None,
    on_evaluation: Callable[[Evaluation, int, int], None] | None = None,
    ordering: str = "fifo",
    bind: Callable[[list[Evaluation], dict], Callable[[str], dict]] | None = None,
) -> SearchResult:
    """Run (or resume) a search; ``evaluate(code)`` returns ``{"fitness": float, ...metrics}``.

    ``bind(history, candidate)``, when given, returns the evaluator for ``candidate`` (a dict with
    its ``index``, ``code`` and ``origin``) from the history so far: the GAN search passes the
    current best's weights on this way. With ``fifo`` ordering that history, and so the
    binding, does not depend on timing. An evaluator with a non-empty ``cache_context`` (e.g.
    the weights it starts from) is cached under that context too: a genotype trained from
    other starting weights is trained again, never served another start's result.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
    cache = cache if cache is not None else EvaluationCache(None, "memory")
    state = _load_state(state_path, params)
    rng = np.random.default_rng(params.seed)
    if state.rng_state is not None:
        rng.bit_generator.state = state.rng_state
    futures: dict[int, Future] = {}
    cache_keys: dict[int, str] = {}  # candidate index -> its key in the cache (genotype [+ context])
    in_flight_by_key: dict[str, Future] = {}
    total = params.total_evaluations

    def submit(candidate: dict) -> None:
        evaluator = bind(state.history, candidate) if bind is not None else evaluate
        context = getattr(evaluator, "cache_context", "")
        key = cache_keys[candidate["index"]] = f"{candidate['key']}@{context}" if context else candidate["key"]
        cached = cache.get(key)
        if cached is not None:
            future: Future = Future()
            future.set_result({**cached, "_cached": True})
        elif key in in_flight_by_key:
            future = in_flight_by_key[key]  # same function already training
        else:
            future = executor.submit(evaluator, candidate["code"])
            in_flight_by_key[key] = future
        futures[candidate["index"]] = future

    for candidate in state.pending:  # resumed: re-submit what was in flight when we stopped
        submit(candidate)
    while len(state.history) < total:
        while len(state.pending) < workers and state.next_index < total:
            candidate = _breed(space, params, state, rng)
            state.pending.append(candidate)
            submit(candidate)
        if ordering == "fifo":
            head = state.pending[0]
        else:
            done, _ = wait([futures[c["index"]] for c in state.pending], return_when=FIRST_COMPLETED)
            head = next(c for c in state.pending if futures[c["index"]] in done)
        started = time.perf_counter()
        try:
            result = dict(futures.pop(head["index"]).result())
        except Exception as err:  # a worker's failure, re-raised with the genotype it was training
            raise RuntimeError(f"{space.name} search: evaluating {head['code']} failed: {err}") from err
        key = cache_keys.pop(head["index"])
        cached = bool(result.pop("_cached", False)) or (key in cache)
        if not cached:
            cache.put(key, result)
        in_flight_by_key.pop(key, None)
        evaluation = Evaluation(
            index=head["index"],
            code=head["code"],
            key=head["key"],
            origin=head["origin"],
            parent=head["parent"],
            fitness=float(result["fitness"]),
            metrics={k: v for k, v in result.items() if k != "fitness"},
            seconds=float(result.get("seconds", time.perf_counter() - started)),
            cached=cached,
        )
        state.history.append(evaluation)
        if params.strategy == "aging":
            state.population.append(len(state.history) - 1)
            if len(state.population) > params.population_size:
                state.population.pop(0)  # the oldest dies, whatever its fitness
        state.pending.remove(head)
        state.rng_state = rng.bit_generator.state
        _save_state(state_path, state)
        if on_evaluation is not None:
            on_evaluation(evaluation, len(state.history), total)
    best = max(state.history, key=lambda e: (e.fitness, -e.index))
    return SearchResult(history=list(state.history), best=best)


def _breed(space: SearchSpace, params: EvolutionParams, state: SearchState, rng: np.random.Generator) -> dict:
    """The next candidate: random while the population fills (or for random search), else
    a mutation of the fittest of ``sample_size`` population members drawn at random."""
    index = state.next_index
    state.next_index += 1
    if params.strategy == "random" or index < params.population_size or not state.population:
        genotype, origin, parent = space.random(rng), "random", None
    else:
        size = min(params.sample_size, len(state.population))
        sample = [state.population[i] for i in rng.choice(len(state.population), size=size, replace=False)]
        parent = max(sample, key=lambda h: state.history[h].fitness)  # first of equals wins
        genotype = space.mutate(space.parse(state.history[parent].code), rng)
        origin, parent = "mutation", state.history[parent].index
    return {
        "index": index,
        "code": space.code(genotype),
        "key": space.key(genotype),
        "origin": origin,
        "parent": parent,
    }


def _load_state(path: Path | None, params: EvolutionParams) -> SearchState:
    if path is not None and Path(path).exists():
        state = SearchState.from_json(Path(path).read_text())
        if state.params != asdict(params):
            raise ValueError(
                f"search state {path} was made with {state.params}, not {asdict(params)}; use another state path"
            )
        return state
    return SearchState(params=asdict(params))


def _save_state(path: Path | None, state: SearchState) -> None:
    if path is not None:
        text = state.to_json().encode()
        atomic_write(Path(path), lambda handle: handle.write(text))
