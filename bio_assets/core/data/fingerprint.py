"""Content fingerprints of class folders, so automation knows which classes changed.

A folder's fingerprint covers every candidate file's relative name and content. A file above the
size limit is never read: it counts by its size. Reading every byte of a large dataset every
minute is wasteful, so a ``DigestCache`` remembers each file's digest with its size, modification
time and inode: only files whose ``stat`` changed are read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from bio_assets.core.data.imaging import DecodeLimits
from bio_assets.core.data.walk import candidate_files
from bio_assets.core.io.atomic import atomic_write

UNREADABLE = b"unreadable"
DEFAULT_MAX_FILE_BYTES = DecodeLimits().max_file_bytes


def oversize_digest(size: int) -> bytes:
    """Stands for the content of a file above the size limit, which is never read: its size."""
    return hashlib.sha256(f"oversize\0{size}".encode()).digest()


def combine_file_digests(file_digests: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over (relative name, content SHA-256) pairs, in the order given (sorted names)."""
    digest = hashlib.sha256()
    for name, file_digest in file_digests:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(file_digest)
    return digest.hexdigest()


def file_digest(path: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """Content SHA-256 of one file, read in chunks; a file above ``max_file_bytes`` by its size only."""
    try:
        size = os.stat(path).st_size
        if size > max_file_bytes:
            return oversize_digest(size)
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").digest()
    except OSError:
        return UNREADABLE


class DigestCache:
    """File digests keyed by path, valid while the file's (size, mtime_ns, inode) holds.

    ``path=None`` keeps the cache in memory only. ``save`` writes it atomically, keeping only
    the files looked up since it was loaded (files that vanished drop out).
    """

    def __init__(self, path: Path | None = None, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        self.path = path
        self.max_file_bytes = max_file_bytes
        self._entries: dict[str, list] = {}
        self._seen: dict[str, list] = {}
        self.files_read = 0
        self.files_reused = 0
        if path is not None and Path(path).exists():
            try:
                loaded = json.loads(Path(path).read_text())
                self._entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._entries = {}  # a damaged cache costs one full read, nothing else

    def digest(self, path: Path) -> bytes:
        key = str(path)
        try:
            status = os.stat(path)
        except OSError:
            return UNREADABLE
        # The limit is part of the signature: a file above it is digested by size only.
        signature = [status.st_size, status.st_mtime_ns, status.st_ino, self.max_file_bytes]
        cached = self._entries.get(key)
        if cached is not None and cached[:4] == signature:
            self.files_reused += 1
            self._seen[key] = cached
            return bytes.fromhex(cached[4])
        value = file_digest(path, self.max_file_bytes)
        if value == UNREADABLE:
            return value
        self.files_read += 1
        self._seen[key] = [*signature, value.hex()]
        return value

    def save(self) -> None:
        if self.path is None:
            return
        text = json.dumps(self._seen, sort_keys=True)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(self.path), lambda handle: handle.write(text.encode()))


def class_fingerprint(
    class_dir: Path,
    pattern: str,
    root: Path,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    cache: DigestCache | None = None,
) -> str:
    """Fingerprint of every candidate file of a class folder.

    Renaming, adding, removing or editing a file changes it; touching a file's mtime
    without changing its bytes does not. Ingestion computes the same value while reading
    (with the same ``max_file_bytes``: a file above it counts by its size, unread).
    """
    cache = cache if cache is not None else DigestCache(max_file_bytes=max_file_bytes)
    fingerprint = _fingerprint_until(class_dir, pattern, root, cache, deadline=None)
    assert fingerprint is not None  # no deadline: every file is read
    return fingerprint


def _fingerprint_until(class_dir: Path, pattern: str, root: Path, cache: DigestCache, *, deadline) -> str | None:
    """The class folder's fingerprint, or ``None`` when ``deadline`` passes first (digests read stay cached)."""
    files, _ = candidate_files(class_dir, pattern, root)
    digests = []
    for path in files:
        if deadline is not None and time.monotonic() >= deadline:
            return None
        digests.append((path.relative_to(class_dir).as_posix(), cache.digest(path)))
    return combine_file_digests(digests)


def dataset_fingerprints(
    class_folders: dict[str, Path],
    pattern: str,
    root: Path,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    cache: DigestCache | None = None,
    deadline: float | None = None,
) -> dict[str, str]:
    """Class name -> fingerprint for every class folder of a dataset.

    ``deadline`` (``time.monotonic()``): classes not finished by then are left out, while the digests
    read so far stay in ``cache``, so that the next call goes on where this one stopped."""
    cache = cache if cache is not None else DigestCache(max_file_bytes=max_file_bytes)
    versions = {}
    for name, folder in class_folders.items():
        fingerprint = _fingerprint_until(folder, pattern, root, cache, deadline=deadline)
        if fingerprint is None:
            break
        versions[name] = fingerprint
    return versions
