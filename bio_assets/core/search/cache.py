"""A persistent evaluation cache: a genotype evaluated under the same training settings
and the same data version is never trained again, within a run or across runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.locks import file_lock


def settings_hash(settings: dict) -> str:
    """Stable short hash of JSON-able settings (sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class EvaluationCache:
    """``(namespace, canonical key) -> result`` in one JSON file, rewritten atomically under a file lock.

    ``namespace`` combines the settings hash and the data version, so a change of either
    starts a fresh namespace while old entries stay valid for their own settings.
    """

    def __init__(self, path: Path | None, namespace: str) -> None:
        self.path = Path(path) if path is not None else None
        self.namespace = namespace
        self._entries: dict[str, dict] = self._read().get(namespace, {})

    def _read(self) -> dict[str, dict]:
        if self.path is None or not self.path.exists():
            return {}
        return json.loads(self.path.read_text())

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: str, result: dict) -> None:
        self._entries[key] = result
        if self.path is None:
            return
        # Under the file's lock: merge with what other runs wrote meanwhile, then replace the file
        # atomically; without the lock, two writers that read the same file lose one's entries.
        with file_lock(self.path.with_name(self.path.name + ".lock"), what="evaluation cache"):
            everything = self._read()
            everything.setdefault(self.namespace, {}).update(self._entries)
            text = json.dumps(everything, sort_keys=True).encode()
            atomic_write(self.path, lambda handle: handle.write(text))
