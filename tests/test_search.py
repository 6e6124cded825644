"""Aging evolution invariants with fake fitness: no training anywhere in this file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wilcoxon

from bio_assets.core.search.cache import EvaluationCache
from bio_assets.core.search.evolution import EvolutionParams, SearchSpace, run_search
from tests.search_fakes import CountingMacroFitness, cell_space, jittery_fitness, macro_space, similarity_fitness

ROOT = Path(__file__).resolve().parents[1]


def search(params, fitness=similarity_fitness, workers=1, space=None, **kwargs):
    with ThreadPoolExecutor(workers) as executor:
        return run_search(space or cell_space(), fitness, params, executor, workers=workers, **kwargs)


def test_population_fills_randomly_then_children_come_from_the_best_of_a_sample():
    params = EvolutionParams(population_size=10, cycles=40, sample_size=4, seed=1)
    history = search(params).history
    assert len(history) == 50
    assert all(e.origin == "random" for e in history[:10]) and all(e.origin == "mutation" for e in history[10:])
    for child in history[10:]:
        assert child.parent is not None and child.parent < child.index
        assert child.key != history[child.parent].key  # a mutation changes the function


def test_aging_keeps_population_size_and_removes_the_oldest(tmp_path):
    params = EvolutionParams(population_size=6, cycles=9, sample_size=3, seed=2)
    state_path = tmp_path / "state.json"
    search(params, state_path=state_path)
    state = json.loads(state_path.read_text())
    # After 15 evaluations the population holds exactly the 6 youngest, oldest first.
    assert state["population"] == list(range(9, 15))


def test_parent_comes_from_the_population_and_beats_its_sample():
    params = EvolutionParams(population_size=8, cycles=20, sample_size=3, seed=5)
    history = search(params).history
    fitness = {e.index: e.fitness for e in history}
    for child in history[8:]:
        window = [e.index for e in history if e.index < child.index][-8:]  # workers=1: population = last 8 results
        assert child.parent in window
        # Best of a sample of 3: at least 2 other members are no fitter than the parent.
        assert sum(fitness[i] <= fitness[child.parent] for i in window if i != child.parent) >= params.sample_size - 1


def test_same_seed_same_history_other_seed_other_history():
    params = EvolutionParams(population_size=10, cycles=30, sample_size=4, seed=3)
    first, second = search(params).history, search(params).history
    assert [(e.code, e.fitness) for e in first] == [(e.code, e.fitness) for e in second]
    other = search(EvolutionParams(population_size=10, cycles=30, sample_size=4, seed=4)).history
    assert [e.code for e in other] != [e.code for e in first]


def test_aging_evolution_beats_random_search_with_the_same_budget():
    """Paired over 30 seeds on a one-optimum landscape; Wilcoxon signed-rank p < 0.01."""
    aging, random = [], []
    for seed in range(30):
        common = dict(population_size=20, cycles=80, sample_size=5, mutation_probability=0.1, seed=seed)
        aging.append(search(EvolutionParams(**common)).best.fitness)
        random.append(search(EvolutionParams(**common, strategy="random")).best.fitness)
    assert np.mean(aging) > np.mean(random)
    assert wilcoxon(aging, random, alternative="greater").pvalue < 0.01


def test_cache_prevents_retraining_within_and_across_runs(tmp_path):
    params = EvolutionParams(population_size=10, cycles=40, sample_size=4, seed=6)
    space = macro_space()
    fitness = CountingMacroFitness()
    first = search(params, fitness, space=space, cache=EvaluationCache(tmp_path / "cache.json", "settings-a"))
    assert len(fitness.calls) == len(set(fitness.calls)) == first.num_trainings
    assert first.num_trainings < len(first.history)  # 126 genotypes, 50 evaluations: repeats happen
    assert all(e.cached == (e.key in {h.key for h in first.history[: e.index]}) for e in first.history)
    again = CountingMacroFitness()
    second = search(params, again, space=space, cache=EvaluationCache(tmp_path / "cache.json", "settings-a"))
    assert again.calls == [] and second.num_trainings == 0
    assert [e.fitness for e in second.history] == [e.fitness for e in first.history]
    fresh = CountingMacroFitness()
    search(
        params, fresh, space=space, cache=EvaluationCache(tmp_path / "cache.json", "settings-b")
    )  # other settings: retrain
    assert len(fresh.calls) == first.num_trainings


def test_state_from_other_settings_is_refused(tmp_path):
    search(EvolutionParams(population_size=4, cycles=2, sample_size=2), state_path=tmp_path / "s.json")
    with pytest.raises(ValueError, match="was made with"):
        search(EvolutionParams(population_size=5, cycles=2, sample_size=2), state_path=tmp_path / "s.json")


SEARCH_SCRIPT = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from bio_assets.core.search.evolution import EvolutionParams, run_search
    from tests.search_fakes import cell_space, jittery_fitness

    params = EvolutionParams(population_size=8, cycles=24, sample_size=3, seed=11)
    with ThreadPoolExecutor(2) as executor:
        run_search(cell_space(), jittery_fitness, params, executor, workers=2, state_path=sys.argv[1],
                   on_evaluation=lambda e, done, total: print(done, flush=True))
    """
)


def test_killed_search_resumes_to_the_same_history(tmp_path):
    state_path = tmp_path / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-c", SEARCH_SCRIPT, str(state_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    for _ in range(13):
        process.stdout.readline()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert 13 <= len(json.loads(state_path.read_text())["history"]) < 32
    subprocess.run([sys.executable, "-c", SEARCH_SCRIPT, str(state_path)], cwd=ROOT, check=True, capture_output=True)
    resumed = json.loads(state_path.read_text())["history"]
    uninterrupted = search(
        EvolutionParams(population_size=8, cycles=24, sample_size=3, seed=11), jittery_fitness, workers=2
    ).history
    assert [(e["code"], e["fitness"]) for e in resumed] == [(e.code, e.fitness) for e in uninterrupted]


def test_two_process_workers_complete_and_are_reproducible():
    params = EvolutionParams(population_size=8, cycles=16, sample_size=3, seed=12)
    runs = []
    for _ in range(2):
        with ProcessPoolExecutor(2) as executor:
            runs.append(run_search(cell_space(), jittery_fitness, params, executor, workers=2).history)
    assert len(runs[0]) == 24
    assert [asdict(e) | {"seconds": 0} for e in runs[0]] == [asdict(e) | {"seconds": 0} for e in runs[1]]


def test_failed_evaluation_names_the_genotype():
    def broken(code):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match=r"evaluating [0-9-]+ failed: CUDA out of memory"):
        search(EvolutionParams(population_size=2, cycles=0, sample_size=1), broken)


def test_as_completed_ordering_finishes_the_same_budget_without_waiting_for_the_oldest():
    import threading
    import time

    first_call = threading.Event()

    def slow_first(code: str) -> dict:
        # The very first candidate takes 0.5 s; every other one returns at once.
        if not first_call.is_set():
            first_call.set()
            time.sleep(0.5)
        return similarity_fitness(code)

    params = EvolutionParams(population_size=6, cycles=14, sample_size=3, seed=13)
    result = search(params, slow_first, workers=3, ordering="as_completed")
    assert len(result.history) == 20 and len({e.index for e in result.history}) == 20
    assert result.history[0].index != 0  # others were taken while candidate 0 still ran
    with pytest.raises(ValueError, match="ordering must be one of"):
        search(params, ordering="random")


def test_pool_workers_are_pinned_to_one_gpu_each(monkeypatch):
    import multiprocessing

    from bio_assets.core.hardware import pin_worker_gpu

    counter = multiprocessing.get_context("spawn").Value("i", 0)
    seen = []
    for _ in range(5):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        pin_worker_gpu(counter, ("0", "1"))
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == ["0", "1", "0", "1", "0"]


def test_bind_sees_the_history_so_far_and_its_evaluator_is_used():
    seen: list[int] = []

    def bind(history, candidate):
        assert candidate["index"] == len(seen)
        seen.append(len(history))
        best = max((e.fitness for e in history), default=0.0)
        return lambda code: {**similarity_fitness(code), "best_at_submission": best}

    result = search(EvolutionParams(population_size=4, cycles=4, sample_size=2, seed=0), bind=bind)
    assert seen == list(range(8))  # fifo, one worker: candidate t is bound after t results
    running_best = np.maximum.accumulate([0.0] + [e.fitness for e in result.history])[:-1]
    assert [e.metrics["best_at_submission"] for e in result.history] == pytest.approx(list(running_best))


def test_a_genotype_bound_to_other_starting_weights_is_not_served_from_the_cache(tmp_path):
    # An evaluator's cache_context (the GAN search: the weights it inherits) is part of the cache
    # key: the same genotype from the same start is served, from another start it trains again.
    trained: list[tuple[str, str]] = []

    class Evaluator:
        def __init__(self, context: str) -> None:
            self.cache_context = context

        def __call__(self, code: str) -> dict:
            trained.append((code, self.cache_context))
            return {"fitness": 1.0 if self.cache_context == "a" else 0.0}

    space = SearchSpace(
        name="fixed",
        random=lambda rng: "x",
        mutate=lambda genotype, rng: "x",
        parse=str,
    )
    cache = EvaluationCache(tmp_path / "cache.json", "settings/v1")
    starts = ["", "a", "a", "b"]
    with ThreadPoolExecutor(1) as executor:
        result = run_search(
            space, lambda code: {"fitness": 0.0}, EvolutionParams(population_size=1, cycles=3, sample_size=1),
            executor, cache=cache, bind=lambda history, candidate: Evaluator(starts[candidate["index"]]),
        )  # fmt: skip
    assert trained == [("x", ""), ("x", "a"), ("x", "b")]
    assert [e.cached for e in result.history] == [False, False, True, False]
    assert [e.fitness for e in result.history] == [0.0, 1.0, 1.0, 0.0]
