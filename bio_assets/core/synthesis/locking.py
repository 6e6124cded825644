"""Locks that keep concurrent publishers and readers of synthetic images apart.

Two kinds, both per (dataset, class):
- the *class lock*: held to reconcile the class folder with the catalog, to commit a new
  publication and promote its folder, and to read the folder (verify, export), so a
  reader never sees a folder half-way through a promotion;
- a *staging lock* per publication: held by the writer from before its staging folder
  exists until the folder is promoted or removed. A staging folder whose lock is free
  belongs to a writer that is gone: only such a folder is ever removed by someone else.

On PostgreSQL both are session advisory locks (they hold across hosts that share the
catalog and the publication folder, and the server drops them when the holder's connection
dies). Elsewhere (SQLite, one host) they are ``flock`` files under ``<dataset root>/.locks``.
Whoever takes several class locks takes them in sorted order, and a staging lock is never
waited for while a class lock is held, so the locks cannot deadlock.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import sqlalchemy as sa

from bio_assets.core.data.class_names import quoted
from bio_assets.core.io.locks import DEFAULT_TIMEOUT_S, acquire, try_acquire

LOCKS = ".locks"
_POLL_S = (0.002, 0.05)  # first and largest wait between tries


def advisory_key(*parts: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key for ``parts`` (a collision only over-serializes)."""
    digest = hashlib.blake2b("\0".join(("bio-assets", *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PublicationLocks:
    """The class and staging locks of the publications under ``root`` (``<root>/<dataset>/<class>``)."""

    def __init__(self, engine: sa.Engine, root: Path, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.engine = engine
        self.root = Path(root)
        self.timeout = timeout
        self.advisory = engine.dialect.name == "postgresql"

    def _file(self, dataset: str, name: str) -> Path:
        return self.root / dataset / LOCKS / name

    def _staging_file(self, dataset: str, class_name: str, publication: str) -> Path:
        return self._file(dataset, f"staging-{quoted(class_name)}-{publication}.lock")

    @contextmanager
    def classes(self, dataset: str, class_names: Iterable[str]) -> Iterator[None]:
        """Hold the class locks of ``class_names`` (waiting for them, in sorted order)."""
        names = sorted(set(class_names))
        if self.advisory:
            with self._advisory([advisory_key("class", dataset, n) for n in names], f"class lock of {dataset}"):
                yield
            return
        with ExitStack() as stack:
            for name in names:
                fd = acquire(
                    self._file(dataset, f"class-{quoted(name)}.lock"),
                    timeout=self.timeout,
                    what=f"class lock of {dataset}/{name}",
                )
                stack.callback(os.close, fd)
            yield

    @contextmanager
    def staging(self, dataset: str, class_name: str, publication: str) -> Iterator[None]:
        """Hold the staging lock of a new publication; its lock file goes with it."""
        if self.advisory:
            key = advisory_key("staging", dataset, class_name, publication)
            with self._advisory([key], f"staging lock of {dataset}/{class_name}"):
                yield
            return
        path = self._staging_file(dataset, class_name, publication)
        fd = acquire(path, timeout=self.timeout, what=f"staging lock of {dataset}/{class_name}")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # unlinked while held: nobody can lock this name again
            os.close(fd)

    def abandoned(self, dataset: str, class_name: str, publication: str) -> bool:
        """Whether the writer of a staging folder is gone (its staging lock is free).

        A writer takes its staging lock before the folder exists and never again once it is
        released, so a free lock stays free: the folder can be removed after this returns True
        (and the lock file of a killed writer is removed here).
        """
        if not self.advisory:
            path = self._staging_file(dataset, class_name, publication)
            fd = try_acquire(path)
            if fd is None:
                return False
            path.unlink()  # removed while held, as every lock file is
            os.close(fd)
            return True
        key = advisory_key("staging", dataset, class_name, publication)
        with self.engine.connect() as connection:
            taken = connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
            if taken:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            connection.commit()
        return bool(taken)

    @contextmanager
    def _advisory(self, keys: list[int], what: str) -> Iterator[None]:
        """Session advisory locks on one dedicated connection, taken in the given order."""
        connection = self.engine.connect()
        held: list[int] = []
        try:
            for key in keys:
                self._wait_advisory(connection, key, what)
                held.append(key)
            yield
        finally:
            try:
                for key in reversed(held):
                    connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                connection.commit()
            except sa.exc.DBAPIError:
                # Never return a connection that may still hold a lock to the pool.
                connection.invalidate()
            connection.close()

    def _wait_advisory(self, connection: sa.Connection, key: int, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        wait = _POLL_S[0]
        while True:
            taken = connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
            connection.commit()  # session locks outlive the transaction; no transaction stays open
            if taken:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} is held by another process for more than {self.timeout:.0f} s")
            time.sleep(wait)
            wait = min(wait * 2, _POLL_S[1])
