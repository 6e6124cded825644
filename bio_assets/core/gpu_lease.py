"""GPU leases: every step that trains takes GPUs of its own on its machine, so two steps that the
``gpu`` pool lets run at once never share a device.

A lease is an exclusive ``flock`` on one file per physical GPU in a folder local to the machine
(GPUs belong to a machine; a shared mount would mix hosts). The kernel releases it when its holder
exits, also when it is killed, so a crashed step never keeps a GPU. Physical ids come from
``CUDA_VISIBLE_DEVICES`` when it is set (a worker started for GPUs 2 and 3 leases "2" and "3" and
uses them as ``cuda:0`` and ``cuda:1``), else they are the indices ``0..count-1``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bio_assets.core.io.locks import try_acquire

DEFAULT_LEASE_DIR = Path("/tmp/bio-assets-gpu-leases")


def visible_gpu_ids(count: int, environment: dict[str, str] | None = None) -> list[str]:
    """The physical ids of the ``count`` GPUs torch sees, in torch's index order."""
    environment = os.environ if environment is None else environment
    listed = [part.strip() for part in environment.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    if listed and len(listed) >= count:
        return listed[:count]
    return [str(index) for index in range(count)]


@dataclass
class GpuLease:
    """``indices``: torch device indices this process may use; held until ``release()`` or exit."""

    indices: tuple[int, ...]
    physical_ids: tuple[str, ...]
    _descriptors: list[int] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for fd in self._descriptors:
            os.close(fd)
        self._descriptors.clear()


def lease_gpus(
    count: int,
    *,
    wanted: int = 1,
    lease_dir: Path = DEFAULT_LEASE_DIR,
    timeout: float = 600.0,
    poll: float = 0.5,
    environment: dict[str, str] | None = None,
) -> GpuLease:
    """Lease ``wanted`` of the ``count`` visible GPUs that no other process holds, waiting up to
    ``timeout`` seconds for them; ``ValueError`` when fewer than ``wanted`` exist, ``TimeoutError``
    (naming the pool setting to fix) when they stay taken."""
    if wanted < 1 or wanted > count:
        raise ValueError(f"a step wants {wanted} GPU(s) but {count} are visible on this machine")
    ids = visible_gpu_ids(count, environment)
    deadline = time.monotonic() + timeout
    while True:
        held: list[tuple[int, str, int]] = []
        for index, physical in enumerate(ids):
            fd = try_acquire(Path(lease_dir) / f"gpu-{physical}.lock")
            if fd is not None:
                held.append((index, physical, fd))
                if len(held) == wanted:
                    return GpuLease(tuple(h[0] for h in held), tuple(h[1] for h in held), [h[2] for h in held])
        for _, _, fd in held:  # not enough free: give back what we took, so waiting steps cannot deadlock
            os.close(fd)
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"all {count} GPU(s) of this machine ({', '.join(ids)}) stayed leased by other steps for "
                f"{timeout:.0f} s: the `gpu` pool limit (dagster.yaml, concurrency.pools) must not exceed the "
                f"number of GPUs divided by the GPUs per step ({wanted})"
            )
        time.sleep(poll)
