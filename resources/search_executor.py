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
from bio_assets.core.cpu_share import usable_cores
from bio_assets.core.gpu_lease import visible_gpu_ids
from bio_assets.core.hardware import auto_layout, pin_worker_gpu
from bio_assets.core.search.runtime import SearchRuntime
from resources.compute import ComputeResource
from resources.paths import data_home

KINDS = ("auto", "in_process", "process_pool", "dask")
DEFAULT_DASK_ADDRESS = "tcp://127.0.0.1:8786"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ExecutorPlan:
    executor: Executor
    workers: int
    threads_per_worker: int  # 0: leave torch's default
    ordering: str = "fifo"
    pinned: bool = False  # each worker sees one GPU of its own
    ships_data: bool = False  # candidates run in other processes: send them the data by reference


class SearchExecutorResource(dg.ConfigurableResource):
    """How many candidates are trained at once, and where."""

    # in_process by default: a worker process costs seconds of start-up (torch's import), more than
    # a demo-sized candidate trains; `auto` pays from paper-sized candidates on (bench search_parallel).
    kind: str = Field(
        default="in_process", description="in_process | auto (by the machine, see auto_layout) | process_pool | dask"
    )
    workers: int = Field(default=2, description="worker processes for process_pool; in-flight candidates for dask")
    dask_address: str = Field(
        default=DEFAULT_DASK_ADDRESS, description="scheduler address (kind=dask): tcp:// on this host, tls:// elsewhere"
    )
    # Mutual TLS with the scheduler: the CA that signed its certificate, and this client's certificate
    # and key, which the scheduler checks (Dask's authentication).
    dask_tls_ca_file: str = Field(default="", description="CA certificate (PEM) for a tls:// scheduler")
    dask_tls_cert: str = Field(default="", description="this client's certificate (PEM)")
    dask_tls_key: str = Field(default="", description="this client's private key (PEM)")
    dask_allow_plaintext: bool = Field(
        default=False, description="allow a tcp:// scheduler off this host (a private network only)"
    )
    state_root: str = Field(
        default_factory=lambda: str(data_home() / "search"), description="search state and evaluation caches"
    )
    ordering: str = Field(
        default="fifo",
        description="fifo: reproducible for a fixed worker count; as_completed: every worker always busy",
    )

    def dask_security(self):
        """Dask's ``Security`` for ``dask_address``: mutual TLS for ``tls://``; ``ValueError`` for an
        unencrypted scheduler off this host unless ``dask_allow_plaintext``, or TLS without its files."""
        from distributed.security import Security

        scheme, _, rest = self.dask_address.partition("://")
        host = rest.rsplit(":", 1)[0].strip("[]")
        if scheme == "tls":
            files = {"dask_tls_ca_file": self.dask_tls_ca_file, "dask_tls_cert": self.dask_tls_cert}
            files["dask_tls_key"] = self.dask_tls_key
            missing = [name for name, value in files.items() if not value]
            if missing:
                raise ValueError(f"dask_address {self.dask_address} is TLS: set {', '.join(missing)}")
            return Security(
                tls_ca_file=self.dask_tls_ca_file, tls_client_cert=self.dask_tls_cert,
                tls_client_key=self.dask_tls_key, require_encryption=True,
            )  # fmt: skip
        if scheme != "tcp":
            raise ValueError(f"dask_address must be tcp://host:port or tls://host:port, got {self.dask_address!r}")
        if host not in LOOPBACK and not self.dask_allow_plaintext:
            raise ValueError(
                f"dask scheduler {host} is not on this host and tcp:// is unencrypted and unauthenticated: use "
                "tls:// with dask_tls_ca_file, dask_tls_cert and dask_tls_key, or set dask_allow_plaintext"
            )
        return Security()

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
                ships_data=plan.ships_data,
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
                yield ExecutorPlan(executor, workers, threads, self.ordering, pinned=pinned, ships_data=True)
        else:
            try:
                from distributed import Client
            except ImportError:
                raise ValueError("kind 'dask' needs the optional extra: pip install 'bio-assets[cluster]'") from None
            with Client(self.dask_address, security=self.dask_security(), timeout=30) as client:
                yield ExecutorPlan(client.get_executor(), max(self.workers, 1), 0, self.ordering, ships_data=True)
