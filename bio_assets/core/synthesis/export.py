"""A dataset's synthetic images as a publishable package: class folders with PNG + MD5 files,
``catalog.sql`` (schema and rows, replayable into an empty database of the same dialect) and
``catalog.csv`` (one row per image), as the source published BCADCID."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from bio_assets.core.synthesis.catalog import (
    TABLES,
    class_names,
    gan_architectures,
    images,
    publications,
    training_parameters,
)
from bio_assets.core.synthesis.files import MANIFEST
from bio_assets.core.synthesis.publish import SyntheticStore

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


def sql_dump(engine: sa.Engine, dataset: str) -> str:
    """CREATE TABLE for every catalog table, then INSERTs of ``dataset``'s rows, for ``engine``'s dialect."""
    dialect = engine.dialect
    with engine.connect() as connection:
        rows = dataset_rows(connection, dataset)
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
    with engine.connect() as connection:
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


def export_package(store: SyntheticStore, dataset: str, destination: Path) -> ExportSummary:
    """Write the package into ``destination`` (new or empty); built beside it, then moved into place."""
    destination = Path(destination).absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ValueError(f"{destination} exists and is not an empty folder; choose a new one")
    with store.engine.connect() as connection:
        classes = sorted(
            connection.execute(sa.select(publications.c.class_label).where(publications.c.dataset == dataset)).scalars()
        )
    if not classes:
        raise ValueError(
            f"dataset {dataset!r} has no published synthetic images; materialize {dataset}/synthetic_dataset first"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".export-", dir=destination.parent))
    try:
        count = 0
        for name in classes:
            store.sync(dataset, name)
            expected = store.expected_md5(dataset, name)
            target = building / name
            target.mkdir()
            for file_name in expected:
                for suffix in ("", ".md5"):
                    shutil.copyfile(
                        store.class_folder(dataset, name) / f"{file_name}{suffix}", target / f"{file_name}{suffix}"
                    )
            count += len(expected)
        (building / "catalog.sql").write_text(sql_dump(store.engine, dataset), encoding="utf-8")
        (building / "catalog.csv").write_text(catalog_csv(store.engine, dataset), encoding="utf-8")
        if destination.exists():
            destination.rmdir()
        os.replace(building, destination)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    total = sum(p.stat().st_size for p in destination.rglob("*") if p.is_file() and p.name != MANIFEST)
    return ExportSummary(destination, len(classes), count, total)
