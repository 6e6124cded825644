"""Cross-class twins: one picture filed under two or more classes.

The same bytes, or the same pixels saved in another lossless format, under two class
folders give contradictory labels and leak between splits. Such files are kept in none of
their classes. Ingestion runs one class at a time, so the twins of the whole dataset are
found here, from the decoded pixels of every candidate file, and each class's ingestion
leaves its own out. Pixel digests are cached by path, size and modification time in a JSON
file, so a second call (the next class) only stats the files.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bio_assets.core.data.imaging import ACCEPTED_FORMATS, DecodeLimits, ImageRejected, pixel_digest, read_image_file
from bio_assets.core.data.ingest import DatasetLayout
from bio_assets.core.data.walk import candidate_files
from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.locks import file_lock

CACHE_VERSION = 1
# The first call decodes every file of the dataset while the other classes' runs wait for it;
# a holder that dies releases the lock at once, so a long wait only means a large dataset.
CACHE_LOCK_TIMEOUT_S = 6 * 3600.0


@dataclass(frozen=True)
class CrossClassTwins:
    """Groups of ``(class, file name relative to the class folder)`` that hold one picture, each
    group spanning at least two classes."""

    groups: tuple[tuple[tuple[str, str], ...], ...] = ()

    @cached_property
    def _group_of(self) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
        return {member: group for group in self.groups for member in group}

    def __len__(self) -> int:
        return len(self._group_of)

    def __contains__(self, member: object) -> bool:
        return member in self._group_of

    def reason(self, class_name: str, file_name: str) -> str | None:
        """Why this file is left out, naming every class the picture is filed under; None if it is no twin."""
        group = self._group_of.get((class_name, file_name))
        if group is None:
            return None
        others = ", ".join(f"{c}/{f}" for c, f in group if c != class_name)
        classes = " and ".join(repr(c) for c in sorted({c for c, _ in group}))
        return f"cross-class twin: same pixels as {others}; filed under classes {classes}, so kept in neither"

    def of_class(self, class_name: str) -> dict[str, str]:
        """``{file name: reason}`` of the class's twins."""
        return {f: self.reason(c, f) for c, f in self._group_of if c == class_name}

    def rows(self) -> list[dict[str, str]]:
        """One row per twin file: class, file and the classes its picture is filed under."""
        return [
            {"class": c, "file": f, "classes": ", ".join(sorted({k for k, _ in group}))}
            for (c, f), group in sorted(self._group_of.items())
        ]


def find_cross_class_twins(
    layout: DatasetLayout,
    *,
    limits: DecodeLimits = DecodeLimits(),
    formats: tuple[str, ...] = ACCEPTED_FORMATS,
    cache_path: Path | None = None,
) -> CrossClassTwins:
    """The cross-class twins of a dataset, from the decoded pixels of every candidate file.

    Files that ingestion rejects (undecodable, too large, unaccepted format) are no twins.
    ``cache_path``: a JSON file of pixel digests keyed by path, size and mtime (read, extended
    and rewritten under a lock, so parallel class runs decode each file once).
    """
    if cache_path is None:
        return _find(layout, limits, formats, {})[0]
    cache_path = Path(cache_path)
    # Which files count as rejected ('' digests) depends on these: other settings, other cache.
    settings = {"version": CACHE_VERSION, "limits": [limits.max_file_bytes, limits.max_pixels], "formats": formats}
    lock = cache_path.with_name(cache_path.name + ".lock")
    with file_lock(lock, timeout=CACHE_LOCK_TIMEOUT_S, what="pixel-digest cache"):
        twins, entries = _find(layout, limits, formats, _read_cache(cache_path, settings))
        text = json.dumps({"settings": settings, "entries": entries}, sort_keys=True).encode()
        atomic_write(cache_path, lambda handle: handle.write(text))
    return twins


def _find(
    layout: DatasetLayout, limits: DecodeLimits, formats: tuple[str, ...], cached: dict[str, list]
) -> tuple[CrossClassTwins, dict[str, list]]:
    entries: dict[str, list] = {}  # only files present now: the cache never outgrows the dataset
    by_digest: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for class_name, folder in layout.class_folders().items():
        files, _ = candidate_files(folder, layout.file_pattern, layout.root)
        for path in files:
            try:
                status = os.stat(path)
            except OSError:
                continue
            key = os.path.abspath(path)
            stamp = [status.st_size, status.st_mtime_ns]
            entry = cached.get(key)
            digest = entry[2] if entry is not None and entry[:2] == stamp else _digest(path, limits, formats)
            entries[key] = [*stamp, digest]
            if digest:
                by_digest[digest].append((class_name, path.relative_to(folder).as_posix()))
    groups = tuple(tuple(sorted(members)) for members in by_digest.values() if len({c for c, _ in members}) > 1)
    return CrossClassTwins(tuple(sorted(groups))), entries


def _digest(path: Path, limits: DecodeLimits, formats: tuple[str, ...]) -> str:
    """The pixel digest, or '' for a file ingestion would reject."""
    try:
        return pixel_digest(read_image_file(path, limits), limits, formats)
    except (ImageRejected, OSError):
        return ""


def _read_cache(path: Path, settings: dict) -> dict[str, list]:
    """The cached entries, or none when the file is missing, unreadable or made with other settings."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("settings") != json.loads(json.dumps(settings)):
        return {}
    entries = document.get("entries")
    return entries if isinstance(entries, dict) else {}
