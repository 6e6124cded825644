"""search_parallel: CNN search throughput with the layout the executor picks on this machine,
against one in-process worker, on the demo data at paper-like sizes."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.demo_data import demo_classification_data
from bench.results import BenchResult
from bio_assets.core.cnn.candidates import CandidateEvaluator
from bio_assets.core.cnn.search import CnnSearchRequest, search_cnn
from bio_assets.core.cnn.training import Precision, TrainParams
from bio_assets.core.cpu_share import usable_cores
from bio_assets.core.hardware import precision_for
from bio_assets.core.search.evolution import EvolutionParams
from bio_assets.core.search.runtime import SearchRuntime
from resources.search_executor import SearchExecutorResource

CHANNELS, EPOCHS = 16, 2
CPU = torch.device("cpu")


def timed_search(
    resource: SearchExecutorResource, data, precision: Precision, *, population: int = 6, cycles: int = 6
) -> tuple[float, int, float, int]:
    """(wall seconds including worker start-up, trainings, summed seconds inside candidates, workers)."""
    request = CnnSearchRequest(
        searching="cell",
        evolution=EvolutionParams(population_size=population, cycles=cycles, sample_size=3, seed=0),
        training=TrainParams(epochs=EPOCHS),
        channels=CHANNELS,
        max_nodes=5,
    )
    with tempfile.TemporaryDirectory() as state_dir, resource.open() as plan:
        started = time.perf_counter()
        threads = plan.threads_per_worker
        runtime = SearchRuntime(
            plan.executor, plan.workers, Path(state_dir), precision=precision, threads_per_worker=threads
        )
        run = search_cnn(data.for_search(), request, runtime)
        trained = [e.seconds for e in run.result.history if not e.cached]
        return time.perf_counter() - started, len(trained), sum(trained), plan.workers


def layout_bound(data, precision: Precision, workers: int) -> tuple[float, float, float]:
    """(seconds of one candidate on every thread, on one thread, the best ``workers`` single-threaded
    workers can do against one worker on every thread): ``workers x t(all) / t(1)``, as if they never
    waited, started or shared a cache."""
    evaluator = CandidateEvaluator(
        data=data.for_search(), train_params=TrainParams(epochs=EPOCHS), channels=CHANNELS, searching="cell",
        precision=precision,
    )  # fmt: skip
    code, threads = "3311-000-14-3", torch.get_num_threads()
    evaluator(code)  # warm-up: oneDNN primitive caches
    seconds = {}
    try:
        for count in (threads, 1):
            torch.set_num_threads(count)
            seconds[count] = statistics.median(evaluator(code)["seconds"] for _ in range(3))
    finally:
        torch.set_num_threads(threads)
    return seconds[threads], seconds[1], workers * seconds[threads] / seconds[1]


def results(device) -> list[BenchResult]:
    """``search_parallel``: trainings per hour of a 28-candidate cell search at paper-like sizes
    (64 px, 800 training images, C=16) with 2 epochs instead of 10, with the layout ``kind=auto``
    picks here, against one in-process worker on every thread. Worker start-up is included."""
    data = demo_classification_data(target_per_class=160)
    precision = precision_for(CPU, amp=True)  # what the search assets train in (compute.precision())
    rates, notes = [], []
    for resource in (SearchExecutorResource(kind="auto"), SearchExecutorResource(kind="in_process")):
        wall, trainings, _, workers = timed_search(resource, data, precision, population=12, cycles=16)
        rates.append(trainings / wall * 3600)
        notes.append(f"{workers} worker(s): {trainings} trainings in {wall:.0f} s")
    cores = usable_cores()
    all_threads, one_thread, bound = layout_bound(data, precision, cores)
    autocast = str(precision.autocast_dtype).removeprefix("torch.") if precision.autocast_dtype else "fp32"
    return [
        BenchResult.rate(
            "search_parallel", rates[0], rates[1], "trainings/h",
            f"cell search, demo data 64 px, {len(data.train.labels)} training images, {EPOCHS} epochs, {autocast}, "
            f"population 12 + 16 cycles, worker start-up included; auto {notes[0]}; in-process {notes[1]}; one "
            f"candidate takes {all_threads:.2f} s on {torch.get_num_threads()} threads and {one_thread:.2f} s on 1, "
            f"so {cores} single-threaded workers can reach at most {bound:.2f}x",
        )
    ]  # fmt: skip


def main() -> None:
    from bench.results import table

    print(table(results(None)))


if __name__ == "__main__":
    main()
