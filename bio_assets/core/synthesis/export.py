"""A dataset's synthetic images as a publishable package: class folders with PNG + MD5 files,
``catalog.sql`` (schema and rows, replayable into an empty database of the same dialect) and
``catalog.csv`` (one row per image), as the source published BCADCID.

The package is built in ``.export-<id>/`` beside the destination and moved into place in one
rename. While it is built, the dataset's class locks are held (no class changes its
publication) and the rows come from one snapshot, so files, MD5s, SQL and CSV agree. A build
folder whose export was killed is removed by the next export into the same parent folder: its
``.export-<id>.lock`` is free.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from bio_assets.core.io.atomic import fsync_dir
from bio_assets.core.io.locks import file_lock, try_acquire
from bio_assets.core.synthesis.catalog import (
    TABLES,
    class_names,
    gan_architectures,
    images,
    publications,
    training_parameters,
)
from bio_assets.core.synthesis.files import MANIFEST, md5_hex
from bio_assets.core.synthesis.publish import SyntheticStore

EXPORT_PREFIX = ".export-"
LOCK_SUFFIX = ".lock"
ATTEMPTS = 5  # a new class published during an export makes it start again

CSV_COLUMNS = (
    "image_id",
    "file_path",
    "class_name",
    "md5",
    "sample_index",
    "seed",
    "publication",
    "created_at",
    "gan_id",
    "generator_genotype",
    "discriminator_genotype",
)


@dataclass(frozen=True)
class ExportSummary:
    folder: Path
    num_classes: int
    num_images: int
    total_bytes: int


def _literal(value: object, dialect: sa.Dialect) -> str:
    """One SQL literal; strings go through the dialect's own quoting, so quotes and ';' stay data."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    elif isinstance(value, dt.datetime):
        value = value.isoformat(sep=" ")
    return sa.String().literal_processor(dialect=dialect)(str(value))


def dataset_rows(connection: sa.Connection, dataset: str) -> dict[str, list[dict]]:
    """Every catalog row that belongs to ``dataset``, per table, in foreign-key order."""
    gans = sa.select(gan_architectures.c.id).where(gan_architectures.c.dataset == dataset)
    classes = sa.select(class_names.c.id).where(class_names.c.gan.in_(gans))
    queries = {
        "gan_architectures": sa.select(gan_architectures).where(gan_architectures.c.dataset == dataset),
        "class_names": sa.select(class_names).where(class_names.c.gan.in_(gans)),
        "training_parameters": sa.select(training_parameters).where(training_parameters.c.gan.in_(gans)),
        "images": sa.select(images).where(images.c.class_name.in_(classes)),
        "publications": sa.select(publications).where(publications.c.dataset == dataset),
    }
    return {
        name: [dict(r) for r in connection.execute(query.order_by(sa.text("id"))).mappings()]
        for name, query in queries.items()
    }


@contextmanager
def _snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection whose reads all see one state of the catalog (REPEATABLE READ on PostgreSQL;
    a SQLite transaction holds the database lock)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def sql_dump(engine: sa.Engine, dataset: str) -> str:
    """CREATE TABLE for every catalog table, then INSERTs of ``dataset``'s rows, for ``engine``'s dialect."""
    with _snapshot(engine) as connection:
        return _dump_text(dataset_rows(connection, dataset), dataset, engine.dialect)


def _dump_text(rows: dict[str, list[dict]], dataset: str, dialect: sa.Dialect) -> str:
    lines = [f"-- bio-assets synthetic image catalog of dataset {dataset!r} ({dialect.name})", "BEGIN;"]
    for table in TABLES:
        lines.append(f"{str(CreateTable(table).compile(dialect=dialect)).strip()};")
    for table in TABLES:
        for row in rows[table.name]:
            columns = ", ".join(row)
            values = ", ".join(_literal(v, dialect) for v in row.values())
            lines.append(f"INSERT INTO {table.name} ({columns}) VALUES ({values});")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def catalog_csv(engine: sa.Engine, dataset: str) -> str:
    with _snapshot(engine) as connection:
        return _csv_text(connection, dataset)


def _csv_text(connection: sa.Connection, dataset: str) -> str:
    query = (
        sa.select(
            images.c.id.label("image_id"),
            images.c.file_path,
            class_names.c.name.label("class_name"),
            images.c.md5,
            images.c.sample_index,
            images.c.seed,
            images.c.publication,
            images.c.created_at,
            gan_architectures.c.id.label("gan_id"),
            gan_architectures.c.generator,
            gan_architectures.c.discriminator,
        )
        .join(class_names, images.c.class_name == class_names.c.id)
        .join(gan_architectures, class_names.c.gan == gan_architectures.c.id)
        .where(gan_architectures.c.dataset == dataset)
        .order_by(class_names.c.name, images.c.sample_index)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in connection.execute(query).mappings():
        writer.writerow(
            [
                row["image_id"],
                row["file_path"],
                row["class_name"],
                row["md5"],
                row["sample_index"],
                row["seed"],
                row["publication"],
                row["created_at"],
                row["gan_id"],
                row["generator"]["genotype"],
                row["discriminator"]["genotype"],
            ]
        )
    return buffer.getvalue()


def remove_stale_exports(parent: Path) -> list[Path]:
    """Remove the ``.export-*`` build folders in ``parent`` whose export is gone; the removed folders.

    An export locks ``.export-<id>.lock`` before it creates ``.export-<id>/`` and keeps the lock
    until the folder is moved into place, so a folder whose lock is free was left by a killed export.
    """
    removed = []
    for path in sorted(Path(parent).glob(f"{EXPORT_PREFIX}*")):
        if not path.exists() or path.is_symlink() or not (path.is_dir() or path.name.endswith(LOCK_SUFFIX)):
            continue  # gone already (with its folder), or not ours
        lock = path if path.name.endswith(LOCK_SUFFIX) else path.with_name(path.name + LOCK_SUFFIX)
        fd = try_acquire(lock)
        if fd is None:
            continue  # an export at work
        try:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            elif (folder := path.with_name(path.name[: -len(LOCK_SUFFIX)])).is_dir():
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return removed


def export_package(store: SyntheticStore, dataset: str, destination: Path) -> ExportSummary:
    """Write the package into ``destination`` (new or empty); built beside it, then moved into place."""
    destination = Path(destination).absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ValueError(f"{destination} exists and is not an empty folder; choose a new one")
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_exports(destination.parent)
    building = destination.parent / f"{EXPORT_PREFIX}{uuid.uuid4().hex}"
    lock = building.with_name(building.name + LOCK_SUFFIX)
    with file_lock(lock, what="export"):
        try:
            building.mkdir()
            num_classes, num_images = _build(store, dataset, building)
            if destination.exists():
                destination.rmdir()
            os.replace(building, destination)
            fsync_dir(destination.parent)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        finally:
            lock.unlink(missing_ok=True)  # unlinked while held: a later export never waits on it
    total = sum(p.stat().st_size for p in destination.rglob("*") if p.is_file() and p.name != MANIFEST)
    return ExportSummary(destination, num_classes, num_images, total)


def _build(store: SyntheticStore, dataset: str, building: Path) -> tuple[int, int]:
    """Fill ``building`` with the class folders, ``catalog.sql`` and ``catalog.csv``; (classes, images)."""
    for _ in range(ATTEMPTS):
        with store.engine.connect() as connection:
            classes = sorted(
                connection.execute(
                    sa.select(publications.c.class_label).where(publications.c.dataset == dataset)
                ).scalars()
            )
        if not classes:
            raise ValueError(
                f"dataset {dataset!r} has no published synthetic images; materialize {dataset}/synthetic_dataset first"
            )
        with store.reading(dataset, classes) as current:
            with _snapshot(store.engine) as connection:
                rows = dataset_rows(connection, dataset)
                listed = {row["class_label"]: row["publication"] for row in rows["publications"]}
                if listed != {name: row["publication"] for name, row in current.items() if row is not None}:
                    continue  # a class was published after the list was read: read it again
                dump = _dump_text(rows, dataset, store.engine.dialect)
                table = _csv_text(connection, dataset)
            for name in classes:
                (building / name).mkdir()
            for row in rows["images"]:
                class_name, _, file_name = row["file_path"].partition("/")
                _copy_checked(store.class_folder(dataset, class_name), building / class_name, file_name, row["md5"])
        for name, text in (("catalog.sql", dump), ("catalog.csv", table)):
            _write_synced(building / name, text.encode("utf-8"))
        for folder in (*(building / name for name in classes), building):
            fsync_dir(folder)
        return len(classes), len(rows["images"])
    raise RuntimeError(f"the catalog of dataset {dataset!r} kept gaining classes during {ATTEMPTS} export attempts")


def _copy_checked(source: Path, target: Path, file_name: str, md5: str) -> None:
    """Copy an image and its ``.md5`` file, refusing bytes that differ from the catalog's MD5."""
    data = (source / file_name).read_bytes()
    if md5_hex(data) != md5:
        raise RuntimeError(f"{source / file_name} does not match its catalog MD5 {md5}; run verify on the class")
    _write_synced(target / file_name, data)
    _write_synced(target / f"{file_name}.md5", (source / f"{file_name}.md5").read_bytes())


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
