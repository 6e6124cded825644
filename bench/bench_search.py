"""search_parallel: CNN search throughput with the layout the executor picks on this machine,
against one in-process worker, on the demo data at paper-like sizes."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.demo_data import demo_classification_data
from bench.results import BenchResult
from bio_assets.core.cnn.search import CnnSearchRequest, search_cnn
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.search.evolution import EvolutionParams
from bio_assets.core.search.runtime import SearchRuntime
from resources.search_executor import SearchExecutorResource


def timed_search(resource: SearchExecutorResource, data, *, population: int = 6, cycles: int = 6, epochs: int = 2):
    """(wall seconds including worker start-up, trainings, summed seconds inside candidates, workers)."""
    request = CnnSearchRequest(
        searching="cell",
        evolution=EvolutionParams(population_size=population, cycles=cycles, sample_size=3, seed=0),
        training=TrainParams(epochs=epochs),
        channels=16,
        max_nodes=5,
    )
    with tempfile.TemporaryDirectory() as state_dir, resource.open() as plan:
        started = time.perf_counter()
        run = search_cnn(
            data.for_search(),
            request,
            SearchRuntime(plan.executor, plan.workers, Path(state_dir), threads_per_worker=plan.threads_per_worker),
        )
        trained = [e.seconds for e in run.result.history if not e.cached]
        return time.perf_counter() - started, len(trained), sum(trained), plan.workers


def results(device) -> list[BenchResult]:
    """``search_parallel``: trainings per hour of a 28-candidate cell search at paper-like sizes
    (64 px, 800 training images, C=16) with 2 epochs instead of 10, with the layout ``kind=auto``
    picks here, against one in-process worker on every thread. Worker start-up is included."""
    data = demo_classification_data(target_per_class=160)
    rates, notes = [], []
    for resource in (SearchExecutorResource(kind="auto"), SearchExecutorResource(kind="in_process")):
        wall, trainings, _, workers = timed_search(resource, data, population=12, cycles=16, epochs=2)
        rates.append(trainings / wall * 3600)
        notes.append(f"{workers} worker(s): {trainings} trainings in {wall:.0f} s")
    return [
        BenchResult.rate(
            "search_parallel", rates[0], rates[1], "trainings/h",
            f"cell search, demo data 64 px, {len(data.train.labels)} training images, 2 epochs, population 12 + 16 "
            f"cycles, worker start-up included; auto {notes[0]}; in-process {notes[1]}",
        )
    ]  # fmt: skip


def main() -> None:
    from bench.results import table

    print(table(results(None)))


if __name__ == "__main__":
    main()
