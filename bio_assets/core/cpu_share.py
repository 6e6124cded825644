"""The cores of a machine shared by every process that trains on its CPU.

A training on the CPU registers in a folder local to the machine (one lock file per training, held
with ``flock``, so the entry of a killed process no longer counts) and computes on
``max(1, min(its threads, cores // trainings))`` threads, counted again every second: alone it keeps
every core, two at once on two cores take one each, and a training that ends gives its core back.

Why: two processes that both compute on every core pay about 3.9x instead of a fair 2x. Their OpenMP
threads spin at the end of each parallel operator, waiting for partner threads that the scheduler has
switched out (docs/operations.md, "Cores"). On one thread there is no barrier to spin at.

The folder is ``$BIO_ASSETS_CPU_SHARE_DIR`` (default ``/tmp/bio-assets-cpu-share``; set it empty to
turn sharing off). A training's thread count may change while it runs, so a shared training can
differ from a lone one in the last bits of its floating-point sums.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch

from bio_assets.core.io.locks import try_flock

SHARE_DIR_VARIABLE = "BIO_ASSETS_CPU_SHARE_DIR"
DEFAULT_SHARE_DIR = Path("/tmp/bio-assets-cpu-share")
RECOUNT_SECONDS = 1.0

_ACTIVE: ContextVar[CpuShare | None] = ContextVar("cpu_share", default=None)


def share_folder(environment: dict[str, str] | None = None) -> Path | None:
    """Where this machine's trainings register; ``None`` when sharing is off (the variable set empty)."""
    environment = os.environ if environment is None else environment
    value = environment.get(SHARE_DIR_VARIABLE)
    if value is None:
        return DEFAULT_SHARE_DIR
    return Path(value) if value.strip() else None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0))


def _holder_is_alive(path: Path) -> bool:
    """Whether a process still holds ``path``'s lock; a free lock's file is deleted (its holder died).
    A file this process may not open or delete (another user's) counts as held."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except PermissionError:
        return True
    try:
        if not try_flock(fd):
            return True
    finally:
        os.close(fd)
    # Another user's file in a sticky folder stays until a process of its owner counts; it never counts.
    with contextlib.suppress(PermissionError):
        path.unlink(missing_ok=True)
    return False


def _shared_folder(folder: Path) -> None:
    """Create ``folder`` as /tmp is (every user may add files, only a file's owner deletes it), so the
    trainings of every user on the machine register in one place."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):  # another user created it just now: theirs to set
            folder.chmod(0o1777)


class CpuShare:
    """One training's registration; ``poll()`` between batches sets torch's threads to its share."""

    def __init__(
        self,
        folder: Path,
        *,
        own_threads: int,
        cores: int,
        every: float = RECOUNT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder, self.own_threads, self.cores, self.every, self.clock = folder, own_threads, cores, every, clock
        _shared_folder(folder)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # Locked before it gets the name that others count, so no one sees it unlocked and deletes it.
        staging = folder / f"{name}.joining"
        self._fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.path = folder / f"{name}.lock"
        os.replace(staging, self.path)
        self._counted_at = float("-inf")
        self.threads = own_threads

    def trainings(self) -> int:
        """Trainings registered on this machine now, this one included."""
        others = [path for path in self.folder.glob("*.lock") if path != self.path]
        return 1 + sum(_holder_is_alive(path) for path in others)

    def share(self) -> int:
        return max(1, min(self.own_threads, self.cores // self.trainings()))

    def poll(self) -> int:
        """Count the trainings again when ``every`` seconds have passed and take this training's share
        of the cores; returns the threads it computes on."""
        now = self.clock()
        if now - self._counted_at >= self.every:
            self._counted_at = now
            threads = self.share()
            if threads != self.threads:
                torch.set_num_threads(threads)
                self.threads = threads
        return self.threads

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        if self.threads != self.own_threads:
            torch.set_num_threads(self.own_threads)
            self.threads = self.own_threads


class _Alone:
    """No sharing (a GPU training, or sharing turned off): ``poll()`` changes nothing."""

    def poll(self) -> int:
        return torch.get_num_threads()


@contextmanager
def sharing_cpu(device: torch.device, *, folder: Path | None = None) -> Iterator[CpuShare | _Alone]:
    """Register a training on ``device`` for its duration (CPU only; a nested training shares the
    registration of the one around it). ``folder``: the registry, default ``share_folder()``."""
    folder = folder if folder is not None else share_folder()
    active = _ACTIVE.get()
    if device.type != "cpu" or folder is None:
        yield _Alone()
        return
    if active is not None:
        yield active
        return
    try:
        share = CpuShare(folder, own_threads=torch.get_num_threads(), cores=usable_cores())
    except OSError as err:
        # Sharing is a courtesy to other trainings: without it this one still trains, on its own threads.
        warnings.warn(f"training without sharing the cores: cannot register in {folder}: {err}", stacklevel=3)
        yield _Alone()
        return
    token = _ACTIVE.set(share)
    try:
        share.poll()
        yield share
    finally:
        _ACTIVE.reset(token)
        share.close()
