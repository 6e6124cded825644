"""The synthetic-image catalog and its publication on SQLite and on the real PostgreSQL:
constraints, names stored verbatim, idempotent re-publishing, and killed publishes."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from bio_assets.core.synthesis.catalog import (
    GanRecord,
    class_names,
    dataset_classes,
    gan_architectures,
    images,
    make_engine,
    publications,
)
from bio_assets.core.synthesis.export import export_package
from bio_assets.core.synthesis.files import STAGING, load_folder_images, read_publication
from bio_assets.core.synthesis.publish import SyntheticStore

TRICKY = 'O\'Brien; DROP TABLE images;-- naïve 細胞 "x"'
TRAINING = {
    "g_optimizer": "adam",
    "d_optimizer": "adam",
    "loss": "hinge",
    "batch_size": 16,
    "epochs": 1.5,
    "iterations": 300,
    "g_lr": 1e-4,
    "d_lr": 4e-4,
}


def gan(dataset: str = "demo", checkpoint: str = "a" * 64) -> GanRecord:
    return GanRecord(
        dataset,
        {"kind": "searched_generator", "genotype": "{3, 42-1, [3]}"},
        {"kind": "searched_discriminator", "genotype": "{3, 63-1, [3]}"},
        "storage/demo/trained_gan/value.safetensors (run 1234)",
        checkpoint,
        "bio-assets 0.1.0 synthetic_dataset v1",
        TRAINING,
    )


def pictures(count: int, value: int) -> np.ndarray:
    """``count`` distinct 8x8 images, all based on ``value``."""
    base = np.full((count, 8, 8, 3), value, np.uint8)
    base[:, 0, 0, 0] = np.arange(count, dtype=np.uint8)
    return base


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = make_engine(url)
    yield SyntheticStore(engine, tmp_path / "synthetic")
    engine.dispose()


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (gan_architectures, class_names, images, publications)
        }


def test_names_with_quotes_semicolons_and_non_ascii_are_stored_verbatim(store):
    publication = store.publish(gan(), TRICKY, pictures(3, 10), seed=7)
    rows = store.expected_md5("demo", TRICKY)
    assert sorted(rows) == [f"{TRICKY}_0000{i}.png" for i in range(3)]
    assert dataset_classes(store.engine, "demo") == [TRICKY]
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(class_names.c.name)).scalar_one() == TRICKY
        assert (
            connection.execute(sa.select(images.c.file_path).order_by(images.c.sample_index)).scalars().first()
            == f"{TRICKY}/{TRICKY}_00000.png"
        )
    assert read_publication(store.class_folder("demo", TRICKY)) == publication.publication
    assert counts(store.engine)["images"] == 3  # nothing was dropped by the name


def test_constraints_hold(store):
    store.publish(gan(), "cells", pictures(2, 10), seed=0)
    with store.engine.connect() as connection:
        class_id = connection.execute(sa.select(class_names.c.id)).scalar_one()
        connection.rollback()
        row = {
            "file_path": "cells/cells_00000.png",
            "class_name": class_id,
            "md5": "0" * 32,
            "sample_index": 9,
            "seed": 0,
            "publication": "p",
            "created_at": sa.func.now(),
        }
        for bad in (
            row,
            {**row, "file_path": "other.png", "sample_index": 0},
            {**row, "file_path": "x.png", "class_name": 999_999},
            {**row, "file_path": "y.png", "sample_index": 5, "md5": "short"},
        ):
            with pytest.raises(sa.exc.IntegrityError):
                with connection.begin():
                    connection.execute(sa.insert(images).values(**bad))
    assert counts(store.engine)["images"] == 2


def test_republishing_a_class_replaces_it_without_duplicates_or_orphans(store):
    store.publish(gan(), "cells", pictures(4, 10), seed=0)
    store.publish(gan(), "other", pictures(2, 20), seed=0)
    second = store.publish(gan(checkpoint="b" * 64), "cells", pictures(3, 30), seed=1)
    third = store.publish(gan(checkpoint="b" * 64), "cells", pictures(3, 30), seed=1)
    assert counts(store.engine) == {"gan_architectures": 2, "class_names": 2, "images": 5, "publications": 2}
    current, defects = store.verify("demo", "cells")
    assert current["publication"] == third.publication != second.publication and defects.ok
    assert sorted(p.name for p in store.class_folder("demo", "cells").glob("*.png")) == [
        f"cells_0000{i}.png" for i in range(3)
    ]
    assert not any((store.dataset_root("demo") / STAGING).iterdir())
    store.publish(gan(checkpoint="b" * 64), "other", pictures(2, 40), seed=1)
    assert counts(store.engine)["gan_architectures"] == 1  # the first GAN lost its last class


KILL_SCRIPT = """
import os, signal, sys
import numpy as np
from pathlib import Path
from bio_assets.core.synthesis.catalog import make_engine
from bio_assets.core.synthesis.publish import SyntheticStore
from tests.test_catalog import gan, pictures
url, root, stage = sys.argv[1:]
store = SyntheticStore(make_engine(url), Path(root))
def die(reached):
    if reached == stage:
        os.kill(os.getpid(), signal.SIGKILL)
store.publish(gan(), "cells", pictures(5, 99), seed=2, on_stage=die)
"""


@pytest.mark.parametrize("stage", ["staged", "committed"])
def test_killed_publish_leaves_catalog_files_and_md5s_in_agreement(store, stage):
    before = store.publish(gan(), "cells", pictures(4, 10), seed=0)
    url = store.engine.url.render_as_string(hide_password=False)
    process = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, url, str(store.root), stage],
        cwd=os.getcwd(),
        capture_output=True,
        text=True,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    current, defects = store.verify("demo", "cells")
    assert defects.ok, defects
    folder = store.class_folder("demo", "cells")
    if stage == "staged":  # killed before the commit: the previous publication, untouched
        assert current["publication"] == before.publication and current["num_images"] == 4
        assert (load_folder_images(folder, sorted(store.expected_md5("demo", "cells")))[:, 1, 1, 0] == 10).all()
    else:  # killed after the commit: the new publication, completed from its staging folder
        assert current["publication"] != before.publication and current["num_images"] == 5
        assert (load_folder_images(folder, sorted(store.expected_md5("demo", "cells")))[:, 1, 1, 0] == 99).all()
    assert read_publication(folder) == current["publication"]
    assert not any((store.dataset_root("demo") / STAGING).iterdir())
    assert counts(store.engine)["images"] == current["num_images"]


def test_export_package_replays_into_an_empty_database(store, tmp_path):
    store.publish(gan(), TRICKY, pictures(3, 10), seed=0)
    store.publish(gan(), "cells", pictures(2, 20), seed=0)
    store.publish(gan(dataset="elsewhere"), "cells", pictures(2, 30), seed=0)
    summary = export_package(store, "demo", tmp_path / "package")
    package = tmp_path / "package"
    assert summary.num_images == 5 and summary.num_classes == 2
    assert sorted(p.name for p in package.iterdir()) == sorted(["catalog.csv", "catalog.sql", "cells", TRICKY])
    rows = list(csv.DictReader(io.StringIO((package / "catalog.csv").read_text())))
    assert len(rows) == 5 and {r["class_name"] for r in rows} == {"cells", TRICKY}
    assert all(
        (package / r["file_path"]).is_file() and (package / f"{r['file_path']}.md5").read_text().split()[0] == r["md5"]
        for r in rows
    )
    dump = (package / "catalog.sql").read_text()
    if store.engine.dialect.name == "sqlite":
        replay = sqlite3.connect(":memory:")
        replay.executescript(dump)
        assert replay.execute("SELECT count(*) FROM images").fetchone()[0] == 5
        assert sorted(replay.execute("SELECT name FROM class_names").fetchall()) == sorted([("cells",), (TRICKY,)])
    else:
        with store.engine.connect() as connection:
            connection.execute(sa.text("CREATE SCHEMA replay"))
            connection.execute(sa.text("SET search_path TO replay"))
            connection.exec_driver_sql(dump)
            assert connection.execute(sa.text("SELECT count(*) FROM replay.images")).scalar_one() == 5
            assert sorted(connection.execute(sa.text("SELECT name FROM replay.class_names")).scalars().all()) == sorted(
                ["cells", TRICKY]
            )
            connection.rollback()
    with pytest.raises(ValueError, match="not an empty folder"):
        export_package(store, "demo", package)


def test_a_reader_never_removes_a_writer_staging_folder(store):
    """A sync, verify or export between a writer's staging and its commit leaves the staged files alone."""
    store.publish(gan(), "cells", pictures(2, 10), seed=0)
    seen = {}

    def read_meanwhile(reached):
        if reached == "staged":
            staging = store.dataset_root("demo") / STAGING
            before = sorted(p.name for p in staging.iterdir())
            store.sync("demo", "cells")
            seen["defects"] = store.verify("demo", "cells")[1]
            seen["staged"] = (before, sorted(p.name for p in staging.iterdir()))

    after = store.publish(gan(), "cells", pictures(3, 20), seed=1, on_stage=read_meanwhile)
    before, kept = seen["staged"]
    assert len(before) == 1 and kept == before  # the writer's folder survived the reader
    assert seen["defects"].ok  # the reader saw the previous publication, whole
    current, defects = store.verify("demo", "cells")
    assert current["publication"] == after.publication and current["num_images"] == 3 and defects.ok


def test_republishing_one_class_with_a_new_gan_keeps_the_other_class_publication(store):
    store.publish(gan(checkpoint="a" * 64), "a", pictures(2, 10), seed=0)
    store.publish(gan(checkpoint="a" * 64), "b", pictures(2, 20), seed=0)
    store.publish(gan(checkpoint="b" * 64), "a", pictures(2, 30), seed=1)
    assert dataset_classes(store.engine, "demo") == ["a", "b"]
    current, defects = store.verify("demo", "b")
    assert current["num_images"] == 2 and defects.ok
    assert counts(store.engine)["gan_architectures"] == 2


def test_publication_fsyncs_the_folders_it_changes(store, monkeypatch):
    import bio_assets.core.synthesis.files as files

    synced = []
    monkeypatch.setattr(files, "fsync_dir", lambda folder: synced.append(Path(folder)))
    publication = store.publish(gan(), "cells", pictures(2, 10), seed=0)
    root = store.dataset_root("demo")
    staging = root / STAGING / f"cells-{publication.publication}"
    assert staging in synced  # its files and manifest
    assert len(synced) - synced[::-1].index(root) > synced.index(staging)  # the rename into place, after
    assert root / STAGING in synced  # the staging folder left it


def test_export_removes_build_folders_of_killed_exports_only(store, tmp_path):
    from bio_assets.core.io.locks import file_lock
    from bio_assets.core.synthesis.export import EXPORT_PREFIX

    store.publish(gan(), "cells", pictures(2, 10), seed=0)
    parent = tmp_path / "exports"
    killed = parent / f"{EXPORT_PREFIX}killed"
    running = parent / f"{EXPORT_PREFIX}running"
    for folder in (killed, running):
        (folder / "cells").mkdir(parents=True)
    with file_lock(parent / f"{EXPORT_PREFIX}running.lock"):  # an export still at work
        export_package(store, "demo", parent / "package")
        assert not killed.exists() and running.is_dir()
    assert sorted(p.name for p in parent.iterdir()) == sorted(
        [f"{EXPORT_PREFIX}running", f"{EXPORT_PREFIX}running.lock", "package"]
    )
