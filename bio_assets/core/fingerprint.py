"""Content fingerprints of class folders, so automation knows which classes changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bio_assets.core.ingest import DatasetLayout, candidate_files


def class_fingerprint(class_dir: Path, layout: DatasetLayout) -> str:
    """SHA-256 over the sorted (relative name, content hash) of every candidate file.

    Renaming, adding, removing or editing a file changes it; touching a file's mtime
    without changing its bytes does not.
    """
    files, _ = candidate_files(class_dir, layout.file_pattern, Path(layout.root))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(class_dir).as_posix().encode())
        digest.update(b"\0")
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def dataset_fingerprints(layout: DatasetLayout) -> dict[str, str]:
    """Class name -> fingerprint for every class folder of the dataset."""
    return {name: class_fingerprint(folder, layout) for name, folder in layout.class_folders().items()}
