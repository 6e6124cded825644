"""The ``search_executor`` resource: where search candidates are evaluated.

``in_process`` (default): one candidate at a time in the run's process.
``process_pool``: N local worker processes, each with cores/N torch threads.
``dask``: a Dask distributed cluster by scheduler address (extra ``[cluster]``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.paths import data_home

KINDS = ("in_process", "process_pool", "dask")


@dataclass(frozen=True)
class ExecutorPlan:
    executor: Executor
    workers: int
    threads_per_worker: int  # 0: leave torch's default


class SearchExecutorResource(dg.ConfigurableResource):
    """How many candidates are trained at once, and where."""

    kind: str = Field(default="in_process", description="in_process | process_pool | dask")
    workers: int = Field(default=2, description="worker processes for process_pool; in-flight candidates for dask")
    dask_address: str = Field(default="", description="scheduler address, e.g. tcp://127.0.0.1:8786 (kind=dask)")
    state_root: str = Field(default_factory=lambda: str(data_home() / "search"), description="search state and evaluation caches")

    def state_dir(self, dataset: str) -> Path:
        return Path(self.state_root) / dataset

    @contextmanager
    def open(self) -> Iterator[ExecutorPlan]:
        if self.kind not in KINDS:
            raise ValueError(f"search_executor kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "in_process":
            with ThreadPoolExecutor(1) as executor:
                yield ExecutorPlan(executor, 1, 0)
        elif self.kind == "process_pool":
            if self.workers < 1:
                raise ValueError(f"workers must be >= 1, got {self.workers}")
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            # spawn: forking a process that already runs torch threads can deadlock.
            with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as executor:
                yield ExecutorPlan(executor, self.workers, threads)
        else:
            if not self.dask_address:
                raise ValueError("search_executor kind 'dask' needs dask_address (tcp://host:port)")
            try:
                from distributed import Client
            except ImportError:
                raise ValueError("kind 'dask' needs the optional extra: pip install 'bio-assets[cluster]'") from None
            with Client(self.dask_address) as client:
                yield ExecutorPlan(client.get_executor(), max(self.workers, 1), 0)
