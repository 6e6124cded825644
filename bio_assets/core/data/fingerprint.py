"""Content fingerprints of class folders, so automation knows which classes changed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from bio_assets.core.data.imaging import DecodeLimits
from bio_assets.core.data.walk import candidate_files

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


def class_fingerprint(
    class_dir: Path, pattern: str, root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> str:
    """Fingerprint of every candidate file of a class folder.

    Renaming, adding, removing or editing a file changes it; touching a file's mtime
    without changing its bytes does not. Ingestion computes the same value while reading
    (with the same ``max_file_bytes``: a file above it counts by its size, unread).
    """
    files, _ = candidate_files(class_dir, pattern, root)
    return combine_file_digests(
        (path.relative_to(class_dir).as_posix(), file_digest(path, max_file_bytes)) for path in files
    )


def dataset_fingerprints(
    class_folders: dict[str, Path], pattern: str, root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> dict[str, str]:
    """Class name -> fingerprint for every class folder of a dataset."""
    return {
        name: class_fingerprint(folder, pattern, root, max_file_bytes=max_file_bytes)
        for name, folder in class_folders.items()
    }
