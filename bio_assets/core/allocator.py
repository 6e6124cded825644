"""Freed tensor memory kept for reuse by glibc's ``malloc`` instead of going back to the kernel.

glibc serves every block above its mmap threshold with a fresh ``mmap`` and unmaps it when freed.
The threshold adapts up to 32 MiB, so a larger activation (a batch of 64 images at 64 px with 32
fp32 channels is 32 MiB; the paper's GAN batches are larger) faults in every page again at each
allocation: cloning 64 MiB took 15.8 ms that way against 2.1 ms with the block reused (2-core
Xeon with AMX). Raising the mmap and trim thresholds to 256 MiB lets ``malloc`` keep and reuse such
blocks; candidate training at 64 px gained 5-10% (docs/benchmarks.md). The cost: up to 256 MiB of
freed memory at the top of the heap stays with the process until it is reused or the process ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util

THRESHOLD_BYTES = 256 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h

_applied: bool | None = None


def reuse_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds to ``THRESHOLD_BYTES`` for this process, once; returns
    whether they are set (False where the C library is not glibc: nothing is changed there)."""
    global _applied
    if _applied is None:
        _applied = False
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            mallopt = getattr(libc, "mallopt", None)
        except OSError:
            mallopt = None
        if mallopt is not None and getattr(libc, "gnu_get_libc_version", None) is not None:
            _applied = all(
                mallopt(ctypes.c_int(parameter), ctypes.c_int(THRESHOLD_BYTES)) == 1
                for parameter in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD)
            )
    return _applied
