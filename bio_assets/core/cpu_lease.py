"""CPU leases: on a machine without GPUs, a training that computes on every core holds the cores
alone, so two trainings started at once take turns instead of sharing them.

Why: torch's OpenMP threads wait for each other at the end of every parallel operator, spinning
first. Two processes with a thread per core each put two threads on every core; a thread that
spins for a partner the scheduler has switched out burns the time that partner needed, and
the small operators of a search candidate end in a barrier every few hundred microseconds. On a
2-core Xeon with AMX-bf16, two candidate trainings at once took 3.5x as long each as alone, where
sharing the cores evenly would cost 2x (docs/operations.md, "Cores").

A lease is a ``flock`` on one file per machine, in a folder local to it (cores belong to a
machine, as GPUs do in ``bio_assets.core.gpu_lease``): exclusive for a process whose torch uses as
many threads as it has cores, shared for a process on fewer threads (a test worker on one thread).
A search's pool workers do not lease: the step that starts them holds the lease for them. Shared
holders run side by side; an exclusive holder waits for every other holder, and they for it. The
kernel releases the lock when its holder exits, also when it is killed. A process holds at most
one lease: asking again while it holds one returns the same lease (counted), so two resources of
one process never wait for each other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bio_assets.core.io.locks import try_acquire

DEFAULT_CPU_LEASE_DIR = Path("/tmp/bio-assets-cpu-lease")
LEASE_FILE = "cpu.lock"


def machine_cores() -> int:
    """The cores this process may run on (its affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class CpuLease:
    """``exclusive``: this process computes on every core and no other leasing process runs;
    ``waited_s``: how long it waited for the cores."""

    path: Path
    exclusive: bool
    waited_s: float

    def describe(self) -> dict[str, str | float]:
        return {"cpu_lease": "exclusive" if self.exclusive else "shared", "cpu_lease_wait_s": round(self.waited_s, 2)}


# This process's lease: (lease, open descriptor holding the lock, how many holders within the process).
_held: dict[Path, tuple[CpuLease, int, int]] = {}


def lease_cpu(
    threads: int,
    *,
    lease_dir: Path = DEFAULT_CPU_LEASE_DIR,
    timeout: float | None = None,
    poll: float = 0.05,
    on_wait: Callable[[str], None] | None = None,
) -> CpuLease:
    """Lease this machine's CPU for a process computing on ``threads`` torch threads: exclusively
    when ``threads`` covers every core, shared otherwise. Waits for other processes' leases
    (``on_wait`` hears once why), without end unless ``timeout`` seconds are given
    (``TimeoutError`` naming the lease file). Give it back with ``release_cpu``."""
    if threads < 1:
        raise ValueError(f"a process computes on at least 1 thread, got {threads}")
    path = Path(lease_dir) / LEASE_FILE
    if path in _held:
        lease, fd, holders = _held[path]
        _held[path] = (lease, fd, holders + 1)
        return lease
    exclusive = threads >= machine_cores()
    started = time.monotonic()
    told = False
    while (fd := try_acquire(path, shared=not exclusive)) is None:
        waited = time.monotonic() - started
        if timeout is not None and waited >= timeout:
            raise TimeoutError(
                f"the CPU lease {path} stayed held by other processes for {waited:.0f} s (a process "
                f"computing on all {machine_cores()} cores waits for every other; one on fewer threads waits "
                "for such a process)"
            )
        if on_wait is not None and not told:
            on_wait(
                f"waiting for the cores: another process {'computes' if exclusive else 'computes on every core'} "
                f"on this machine (lease {path}); this one starts when it ends, instead of sharing the cores"
            )
            told = True
        time.sleep(poll)
    lease = CpuLease(path, exclusive, time.monotonic() - started)
    _held[path] = (lease, fd, 1)
    return lease


def release_cpu(lease: CpuLease) -> None:
    """Give back one hold of ``lease``; the lock goes when this process's last hold does."""
    if lease.path not in _held:
        return
    held, fd, holders = _held[lease.path]
    if holders > 1:
        _held[lease.path] = (held, fd, holders - 1)
        return
    del _held[lease.path]
    os.close(fd)
