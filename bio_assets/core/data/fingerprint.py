"""Content fingerprints of class folders, so automation knows which classes changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from bio_assets.core.data.walk import candidate_files

UNREADABLE = b"unreadable"


def combine_file_digests(file_digests: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over (relative name, content SHA-256) pairs, in the order given (sorted names)."""
    digest = hashlib.sha256()
    for name, file_digest in file_digests:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(file_digest)
    return digest.hexdigest()


def class_fingerprint(class_dir: Path, pattern: str, root: Path) -> str:
    """Fingerprint of every candidate file of a class folder.

    Renaming, adding, removing or editing a file changes it; touching a file's mtime
    without changing its bytes does not. Ingestion computes the same value while reading.
    """
    files, _ = candidate_files(class_dir, pattern, root)
    pairs = []
    for path in files:
        try:
            with open(path, "rb") as handle:
                file_digest = hashlib.file_digest(handle, "sha256").digest()
        except OSError:
            file_digest = UNREADABLE
        pairs.append((path.relative_to(class_dir).as_posix(), file_digest))
    return combine_file_digests(pairs)


def dataset_fingerprints(class_folders: dict[str, Path], pattern: str, root: Path) -> dict[str, str]:
    """Class name -> fingerprint for every class folder of a dataset."""
    return {name: class_fingerprint(folder, pattern, root) for name, folder in class_folders.items()}
