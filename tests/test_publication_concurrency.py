"""Concurrent publishers and readers of the synthetic-image catalog, on SQLite and on the real
PostgreSQL: four publisher processes over equal and different classes (first publishes racing
on one GAN row, republishes switching GANs), with export, verify and sync readers running
beside them; then the same with SIGKILLs at random moments. Afterwards catalog, files and
MD5s agree, every publication a publisher reported committed left its class published, and
no staging, trash or export leftovers remain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from bio_assets.core.synthesis.catalog import (
    class_names,
    dataset_classes,
    gan_architectures,
    images,
    make_engine,
    publications,
    training_parameters,
)
from bio_assets.core.synthesis.export import EXPORT_PREFIX, export_package
from bio_assets.core.synthesis.files import STAGING, TRASH, load_folder_images, read_publication
from bio_assets.core.synthesis.publish import SyntheticStore
from tests.publication_workers import CLASSES, DATASET, decoded_values

PUBLISHERS = 4
ROUNDS = 10  # per publisher, in the run without kills
READERS = ("export", "verify", "sync")
KILLS = 12  # per database, in the run with kills
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return request.getfixturevalue("postgres_database")


def spawn(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.publication_workers", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def go(control: Path, workers: list[int], timeout: float = 120) -> None:
    """Start every worker at once, after all have imported and connected."""
    deadline = time.monotonic() + timeout
    while not all((control / f"ready-{w}").exists() for w in workers):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.02)
    (control / "go").touch()


def committed_log(control: Path) -> list[tuple[str, str, int]]:
    """(class, publication, seed) of every publish a publisher saw return."""
    rows = []
    for log in control.glob("published-*.tsv"):
        for line in log.read_text(encoding="utf-8").splitlines():
            class_name, publication, value = line.split("\t")
            rows.append((class_name, publication, int(value)))
    return rows


def assert_consistent(store: SyntheticStore, control: Path) -> None:
    """Catalog, files and MD5s agree for every class, and nothing committed was lost."""
    engine = store.engine
    committed = committed_log(control)
    classes = dataset_classes(engine, DATASET)
    assert {c for c, _, _ in committed} <= set(classes), "a committed class lost its publication"
    total = 0
    for class_name in classes:
        current, defects = store.verify(DATASET, class_name)
        assert defects.ok, (class_name, defects)
        folder = store.class_folder(DATASET, class_name)
        assert read_publication(folder) == current["publication"]
        names = list(store.expected_md5(DATASET, class_name))
        assert len(names) == current["num_images"] == 3
        # Every file of the folder comes from the publication the catalog names.
        assert decoded_values(load_folder_images(folder, names)) == {current["seed"]}
        total += len(names)
    with engine.connect() as connection:
        count = {
            t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (images, publications, gan_architectures, training_parameters, class_names)
        }
        used = set(connection.execute(sa.select(publications.c.gan)).scalars()) | set(
            connection.execute(sa.select(class_names.c.gan)).scalars()
        )
        gans = set(connection.execute(sa.select(gan_architectures.c.id)).scalars())
    assert count["images"] == total and count["publications"] == len(classes)
    assert gans == used and count["training_parameters"] == len(gans), "orphaned or missing GAN rows"
    dataset_root = store.dataset_root(DATASET)
    assert not any((dataset_root / STAGING).iterdir()), "staging leftovers after every writer is gone"
    assert not (dataset_root / TRASH).exists() or not any((dataset_root / TRASH).iterdir())


def finish(processes: list[subprocess.Popen], control: Path, timeout: float = 240) -> list[tuple[int, str]]:
    (control / "stop").touch()
    results = []
    for process in processes:
        _, err = process.communicate(timeout=timeout)
        results.append((process.returncode, err))
    return results


def test_concurrent_publishers_and_readers_agree(catalog_url, tmp_path):
    """Starts on a database without tables: the workers create them at once, and their first
    publishes (all with one GAN) race on its row."""
    root, control = tmp_path / "synthetic", tmp_path / "control"
    control.mkdir()
    publishers = [spawn("publish", catalog_url, root, w, 7, ROUNDS, control) for w in range(PUBLISHERS)]
    readers = [spawn("read", catalog_url, root, mode, 100 + i, control) for i, mode in enumerate(READERS)]
    go(control, [*range(PUBLISHERS), *range(100, 100 + len(READERS))])
    for process in publishers:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err  # e.g. no UniqueViolation on uq_gan_per_checkpoint
    for code, err in finish(readers, control):
        assert code == 0, err
    assert len(committed_log(control)) == PUBLISHERS * ROUNDS
    assert all(int((control / f"reads-{100 + i}").read_text()) > 0 for i in range(len(READERS)))
    store = SyntheticStore(make_engine(catalog_url), root)
    assert_consistent(store, control)
    assert set(dataset_classes(store.engine, DATASET)) == set(CLASSES)
    store.engine.dispose()


@pytest.mark.slow(seconds=10)
def test_sigkill_at_random_moments_leaves_catalog_and_files_consistent(catalog_url, tmp_path):
    root, control = tmp_path / "synthetic", tmp_path / "control"
    control.mkdir()
    make_engine(catalog_url).dispose()
    rng = np.random.default_rng(11)
    roles = {w: ("publish", w) for w in range(PUBLISHERS)} | {100 + i: ("read", m) for i, m in enumerate(READERS)}

    def start(worker: int) -> subprocess.Popen:
        kind, what = roles[worker]
        if kind == "publish":
            return spawn("publish", catalog_url, root, worker, 5, 10**6, control)
        return spawn("read", catalog_url, root, what, worker, control)

    running = {w: start(w) for w in roles}
    go(control, list(roles))
    killed, next_worker = 0, PUBLISHERS
    while killed < KILLS:
        time.sleep(float(rng.uniform(0.1, 0.8)))
        victim = sorted(running)[int(rng.integers(len(running)))]
        running[victim].send_signal(signal.SIGKILL)
        _, err = running[victim].communicate(timeout=60)
        assert running[victim].returncode in (0, -signal.SIGKILL), err
        killed += 1
        if roles[victim][0] == "publish":  # a fresh worker id: its seeds never repeat a killed one's
            roles[next_worker] = roles.pop(victim)[0], next_worker
            del running[victim]
            running[next_worker] = start(next_worker)
            next_worker += 1
        else:
            running[victim] = start(victim)
    for code, err in finish(list(running.values()), control):
        assert code in (0, -signal.SIGKILL), err
    publishes = len(committed_log(control))
    assert publishes >= PUBLISHERS, "the publishers hardly ran between the kills"
    store = SyntheticStore(make_engine(catalog_url), root)
    assert_consistent(store, control)
    # A later export removes the build folders that killed exports left beside their packages.
    for exports in control.glob("exports-*"):
        export_package(store, DATASET, exports / "final")
        assert not list(exports.glob(f"{EXPORT_PREFIX}*")), os.listdir(exports)
    store.engine.dispose()
    print(f"{killed} kills, {publishes} completed publishes on {store.engine.dialect.name}")
