"""Advisory file locks (``flock``) for read-modify-write updates shared between processes.

A lock is held on an open file description, so the kernel releases it when the holder
exits, also when it is killed: a lock that can be taken proves that its last holder is gone.
A lock file may be deleted, but only by a process that holds its lock: whoever then gets the
lock on the deleted file sees that the name now leads elsewhere (or nowhere) and starts over,
so one name never hands out two locks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_TIMEOUT_S = 600.0
_POLL_S = (0.002, 0.05)  # first and largest wait between tries


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def try_flock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` if it is free; never waits."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _still_linked(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not deleted or replaced meanwhile)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def try_acquire(path: Path) -> int | None:
    """The open descriptor holding the lock of ``path`` (created when missing), or None when
    another process holds it; never waits. Closing the descriptor releases the lock."""
    fd = _open(Path(path))
    if try_flock(fd) and _still_linked(fd, Path(path)):
        return fd
    os.close(fd)
    return None


def acquire(path: Path, *, timeout: float = DEFAULT_TIMEOUT_S, what: str = "") -> int:
    """Open ``path`` and wait (polling, so that a timeout is possible) for its exclusive lock.

    Returns the open descriptor; closing it releases the lock. Raises ``TimeoutError``
    naming the lock when another process holds it for longer than ``timeout`` seconds.
    """
    path = Path(path)
    deadline = time.monotonic() + timeout
    wait = _POLL_S[0]
    while True:
        fd = _open(path)
        try:
            while not try_flock(fd):
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{what or 'lock'} {path} is held by another process for more than {timeout:.0f} s"
                    )
                time.sleep(wait)
                wait = min(wait * 2, _POLL_S[1])
        except BaseException:
            os.close(fd)
            raise
        if _still_linked(fd, path):
            return fd
        os.close(fd)  # its holder deleted the file: lock the one the name leads to now


@contextmanager
def file_lock(path: Path, *, timeout: float = DEFAULT_TIMEOUT_S, what: str = "") -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (created when missing) for the ``with`` block."""
    fd = acquire(path, timeout=timeout, what=what)
    try:
        yield
    finally:
        os.close(fd)
