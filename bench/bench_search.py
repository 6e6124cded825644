"""Search wall time with 1 and 2 workers on the demo data, and evaluations saved by
deduplication at the paper settings of the macro search (fake fitness: counts only)."""

from __future__ import annotations

import hashlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.demo_data import demo_classification_data
from bio_assets.core.cnn.search import CnnSearchRequest, search_cnn
from bio_assets.core.cnn.spaces import macro_space
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.search.evolution import EvolutionParams, run_search
from resources.search_executor import SearchExecutorResource


def timed_search(workers: int, data) -> tuple[float, int, float]:
    """(wall seconds including worker start-up, trainings, summed seconds inside candidates)."""
    request = CnnSearchRequest(
        searching="cell",
        evolution=EvolutionParams(population_size=6, cycles=6, sample_size=3, seed=0),
        training=TrainParams(epochs=2),
        channels=16,
        max_nodes=5,
    )
    resource = SearchExecutorResource(kind="in_process" if workers == 1 else "process_pool", workers=workers)
    with tempfile.TemporaryDirectory() as state_dir, resource.open() as plan:
        started = time.perf_counter()
        run = search_cnn(
            data.for_search(),
            request,
            plan.executor,
            plan.workers,
            Path(state_dir),
            threads_per_worker=plan.threads_per_worker,
        )
        trained = [e.seconds for e in run.result.history if not e.cached]
        return time.perf_counter() - started, len(trained), sum(trained)


def macro_fitness(code: str) -> dict:
    """A fixed random fitness per code (stable across processes, unlike ``hash``)."""
    return {"fitness": int(hashlib.sha256(code.encode()).hexdigest()[:8], 16) / 16**8}


def dedup_savings(seeds: int = 5) -> list[int]:
    saved = []
    for seed in range(seeds):
        params = EvolutionParams(population_size=100, cycles=30, sample_size=25, mutation_probability=0.05, seed=seed)
        with ThreadPoolExecutor(1) as executor:
            result = run_search(macro_space(0.05), macro_fitness, params, executor)
        saved.append(len(result.history) - result.num_trainings)
    return saved


def main() -> None:
    data = demo_classification_data()
    one, trained_one, busy_one = timed_search(1, data)
    two, trained_two, busy_two = timed_search(2, data)
    print(
        "cell search on the demo data: population 6, 6 cycles, 2 epochs at 64x64 per candidate (worker start-up "
        "included)"
    )
    print(
        f"  1 worker (in process, all threads): {one:6.1f} s wall for {trained_one} trainings ({busy_one:.1f} s "
        "inside candidates)"
    )
    print(
        f"  2 workers (process pool, 1 thread each): {two:6.1f} s wall for {trained_two} trainings ({busy_two:.1f} s "
        "inside candidates)"
    )
    print(
        f"  speed-up 2 workers / 1 worker: {one / two:.2f} (pays off with more cores or one GPU per worker, not when "
        "threads already use every core)"
    )
    saved = dedup_savings()
    print(
        f"macro search at paper settings (population 100, 30 cycles, 126 possible networks): {saved} of 130 evaluations"
    )
    print(
        f"  served from the cache over 5 seeds: mean {np.mean(saved):.1f} ({np.mean(saved) / 130:.0%} of the "
        "trainings saved)"
    )


if __name__ == "__main__":
    main()
