"""Read-modify-write files shared by processes (the evaluation cache, the dataset registry):
several processes updating at once lose no update."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bio_assets.core.registry import DatasetEntry, load_registry, update_registry

REPO = Path(__file__).resolve().parents[1]
PROCESSES, UPDATES = 4, 15

WORKER = """
import sys, time
from pathlib import Path
import pytest

from bio_assets.core.registry import DatasetEntry, update_registry, with_entry
from bio_assets.core.search.cache import EvaluationCache
what, path, worker, updates, go = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
while not go.exists():
    time.sleep(0.005)
for i in range(updates):
    if what == "cache":
        # A fresh cache object each time, as each search run opens its own: it holds only its own entry.
        EvaluationCache(path, f"settings-{worker % 2}").put(f"w{worker}-{i}", {"fitness": worker + i / 100})
    else:
        entry = DatasetEntry(f"d{worker}_{i}", f"/data/{worker}/{i}")
        update_registry(path, lambda entries: with_entry(entries, entry))
"""


def run_workers(what: str, path: Path, tmp_path: Path) -> None:
    go = tmp_path / f"go-{what}"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, what, str(path), str(w), str(UPDATES), str(go)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    time.sleep(0.5)
    go.touch()
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err


def test_concurrent_cache_updates_lose_no_entry(tmp_path):
    path = tmp_path / "search" / "cnn-cache.json"
    run_workers("cache", path, tmp_path)
    stored = json.loads(path.read_text())
    expected = {
        f"settings-{n}": {f"w{w}-{i}" for w in range(PROCESSES) if w % 2 == n for i in range(UPDATES)} for n in (0, 1)
    }
    assert {namespace: set(entries) for namespace, entries in stored.items()} == expected


def test_concurrent_registry_updates_lose_no_entry(tmp_path):
    path = tmp_path / "datasets.yaml"
    run_workers("registry", path, tmp_path)
    names = {e.name for e in load_registry(path)}
    assert names == {"demo"} | {f"d{w}_{i}" for w in range(PROCESSES) for i in range(UPDATES)}


def test_a_failed_registry_change_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "datasets.yaml"
    update_registry(path, lambda entries: [*entries, DatasetEntry("extra", "/data/extra")])
    before = path.read_text()

    def refuse(entries):
        raise ValueError("dataset 'extra' is already registered")

    with pytest.raises(ValueError, match="already registered"):
        update_registry(path, refuse)
    assert path.read_text() == before
