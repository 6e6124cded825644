"""The ``search_executor`` resource: where search candidates are evaluated.

``in_process`` (default): one candidate at a time in the run's process.
``auto``: ``process_pool`` with one single-threaded worker per core on a CPU-only machine, one
worker per GPU with several GPUs, else ``in_process`` (``auto_layout``); for paper-sized searches.
``process_pool``: N local worker processes, each with cores/N torch threads and, when the step
holds several GPUs (``compute``'s lease), its own GPU (worker k sees leased GPU k mod count).
``dask``: a Dask distributed cluster by scheduler address (extra ``[cluster]``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import torch
from pydantic import Field

from bio_assets.core.cnn.training import Precision
from bio_assets.core.gpu_lease import visible_gpu_ids
from bio_assets.core.hardware import auto_layout, pin_worker_gpu, usable_cores
from bio_assets.core.search.runtime import SearchRuntime
from resources.compute import ComputeResource
from resources.paths import data_home

KINDS = ("auto", "in_process", "process_pool", "dask")


@dataclass(frozen=True)
class ExecutorPlan:
    executor: Executor
    workers: int
    threads_per_worker: int  # 0: leave torch's default
    ordering: str = "fifo"
    pinned: bool = False  # each worker sees one GPU of its own


class SearchExecutorResource(dg.ConfigurableResource):
    """How many candidates are trained at once, and where."""

    # in_process by default: a worker process costs seconds of start-up (torch's import), more than
    # a demo-sized candidate trains; `auto` pays from paper-sized candidates on (bench search_parallel).
    kind: str = Field(
        default="in_process", description="in_process | auto (by the machine, see auto_layout) | process_pool | dask"
    )
    workers: int = Field(default=2, description="worker processes for process_pool; in-flight candidates for dask")
    dask_address: str = Field(default="", description="scheduler address, e.g. tcp://127.0.0.1:8786 (kind=dask)")
    state_root: str = Field(
        default_factory=lambda: str(data_home() / "search"), description="search state and evaluation caches"
    )
    ordering: str = Field(
        default="fifo",
        description="fifo: reproducible for a fixed worker count; as_completed: every worker always busy",
    )

    def state_dir(self, dataset: str) -> Path:
        return Path(self.state_root) / dataset

    @contextmanager
    def runtime(
        self, dataset: str, compute: ComputeResource, *, precision: Precision, on_evaluation=None
    ) -> Iterator[SearchRuntime]:
        """The opened executor as one :class:`SearchRuntime`: its layout, ``dataset``'s state folder,
        ``compute``'s device, and the ``precision`` the candidates train in."""
        device = compute.torch_device()
        lease = compute.gpu_lease()
        gpu_ids = lease.physical_ids if lease is not None else visible_gpu_ids(torch.cuda.device_count())
        with self.open(gpu_ids=tuple(gpu_ids) if device.type == "cuda" else ()) as plan:
            yield SearchRuntime(
                plan.executor,
                plan.workers,
                self.state_dir(dataset),
                # A pinned worker sees only its own GPU, as cuda:0.
                device="cuda" if plan.pinned and device.type == "cuda" else str(device),
                precision=precision,
                threads_per_worker=plan.threads_per_worker,
                on_evaluation=on_evaluation,
                ordering=plan.ordering,
            )

    @contextmanager
    def open(self, *, gpu_ids: tuple[str, ...] = ()) -> Iterator[ExecutorPlan]:
        """The executor; ``gpu_ids``: the physical GPUs the step holds (pool workers are pinned to them)."""
        if self.kind not in KINDS:
            raise ValueError(f"search_executor kind {self.kind!r} is not one of {KINDS}")
        kind, workers = self.kind, self.workers
        if kind == "auto":
            kind, workers = auto_layout(usable_cores(), len(gpu_ids))
        if kind == "in_process":
            with ThreadPoolExecutor(1) as executor:
                yield ExecutorPlan(executor, 1, 0, self.ordering)
        elif kind == "process_pool":
            if workers < 1:
                raise ValueError(f"workers must be >= 1, got {workers}")
            threads = max(1, usable_cores() // workers)
            # spawn: forking a process that already runs torch threads can deadlock.
            context = multiprocessing.get_context("spawn")
            pinned = len(gpu_ids) > 1
            pinning = {"initializer": pin_worker_gpu, "initargs": (context.Value("i", 0), gpu_ids)} if pinned else {}
            with ProcessPoolExecutor(workers, mp_context=context, **pinning) as executor:
                yield ExecutorPlan(executor, workers, threads, self.ordering, pinned=pinned)
        else:
            if not self.dask_address:
                raise ValueError("search_executor kind 'dask' needs dask_address (tcp://host:port)")
            try:
                from distributed import Client
            except ImportError:
                raise ValueError("kind 'dask' needs the optional extra: pip install 'bio-assets[cluster]'") from None
            with Client(self.dask_address) as client:
                yield ExecutorPlan(client.get_executor(), max(self.workers, 1), 0, self.ordering)
