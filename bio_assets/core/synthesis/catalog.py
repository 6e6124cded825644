"""The SQL catalog of synthetic images (METHOD §6), SQLAlchemy Core with bound parameters only.

Tables: ``gan_architectures`` (generator and discriminator genotypes as JSON, plus where the
generator's weights came from), ``class_names``, ``training_parameters`` and ``images`` as the
source published them, and ``publications``: which publication each (dataset, class) holds now.
One ``publish_class`` call replaces a class's rows in one transaction; that commit is the moment
the new images become current (``files.reconcile`` then makes the folder follow).

Concurrent writers: ``publish_class`` transactions of one dataset run one at a time (a
transaction advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so the GAN-row
upsert never races into ``uq_gan_per_checkpoint`` and the orphan cleanup, which only looks
at its own dataset, only sees committed rows: it never deletes a GAN another class's
publication is about to use, so no ``ON DELETE CASCADE`` removes a committed publication.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from bio_assets.core.synthesis.files import SyntheticFile
from bio_assets.core.synthesis.locking import advisory_key

metadata = sa.MetaData()
JSON = sa.JSON().with_variant(JSONB(), "postgresql")

gan_architectures = sa.Table(
    "gan_architectures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset", sa.Text, nullable=False),
    sa.Column("generator", JSON, nullable=False),
    sa.Column("discriminator", JSON, nullable=False),
    sa.Column("generator_checkpoint", sa.Text, nullable=False),
    sa.Column("checkpoint_sha256", sa.String(64), nullable=False),
    sa.Column("code_version", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("dataset", "checkpoint_sha256", name="uq_gan_per_checkpoint"),
)
class_names = sa.Table(
    "class_names",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("gan", sa.Integer, sa.ForeignKey("gan_architectures.id", ondelete="CASCADE"), nullable=False),
    sa.UniqueConstraint("gan", "name", name="uq_class_per_gan"),
)
training_parameters = sa.Table(
    "training_parameters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("g_optimizer", sa.Text, nullable=False),
    sa.Column("d_optimizer", sa.Text, nullable=False),
    sa.Column("loss", sa.Text, nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("epochs", sa.Float, nullable=False),  # the source's unit; iterations * batch / images
    sa.Column("iterations", sa.Integer, nullable=False),
    sa.Column("g_lr", sa.Float, nullable=False),
    sa.Column("d_lr", sa.Float, nullable=False),
    sa.Column(
        "gan", sa.Integer, sa.ForeignKey("gan_architectures.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
)
images = sa.Table(
    "images",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("file_path", sa.Text, nullable=False),
    sa.Column("class_name", sa.Integer, sa.ForeignKey("class_names.id", ondelete="CASCADE"), nullable=False),
    sa.Column("md5", sa.String(32), nullable=False),
    sa.Column("sample_index", sa.Integer, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("publication", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("class_name", "file_path", name="uq_image_path"),
    sa.UniqueConstraint("class_name", "sample_index", name="uq_image_index"),
    sa.CheckConstraint("length(md5) = 32", name="ck_md5_length"),
)
publications = sa.Table(
    "publications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset", sa.Text, nullable=False),
    sa.Column("class_label", sa.Text, nullable=False),
    sa.Column("publication", sa.String(32), nullable=False, unique=True),
    sa.Column("gan", sa.Integer, sa.ForeignKey("gan_architectures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("num_images", sa.Integer, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("image_size", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("dataset", "class_label", name="uq_current_publication"),
)
TABLES = (gan_architectures, class_names, training_parameters, images, publications)


@dataclass(frozen=True)
class GanRecord:
    """What identifies the generator that made a publication, and how it was trained."""

    dataset: str
    generator: dict
    discriminator: dict
    generator_checkpoint: str
    checkpoint_sha256: str
    code_version: str
    training: dict  # g_optimizer, d_optimizer, loss, batch_size, epochs, iterations, g_lr, d_lr


@dataclass(frozen=True)
class Publication:
    dataset: str
    class_name: str
    publication: str
    seed: int
    image_size: int
    files: list[SyntheticFile]


SQLITE_BUSY_TIMEOUT_S = 120.0  # how long a SQLite transaction waits for another one to finish


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with the catalog's tables created (safely, also by several processes at once).

    SQLite gets foreign keys switched on (off by default there), write-ahead logging (readers
    never block the writer) and ``BEGIN IMMEDIATE`` transactions: every transaction takes the
    write lock when it starts, so two never deadlock upgrading a read lock, and waits up to
    ``SQLITE_BUSY_TIMEOUT_S`` for it.
    """
    if sa.engine.make_url(url).get_backend_name() != "sqlite":
        engine = sa.create_engine(url)
    else:
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(advisory_key("schema"))))
        metadata.create_all(connection)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    # The driver's own transaction handling would BEGIN (deferred) by itself; the engine's
    # "begin" event issues BEGIN IMMEDIATE instead.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        dbapi_connection.execute("PRAGMA journal_mode=WAL")


def _get_or_create_gan(connection: sa.Connection, gan: GanRecord, now: dt.datetime) -> int:
    found = connection.execute(
        sa.select(gan_architectures.c.id).where(
            gan_architectures.c.dataset == gan.dataset, gan_architectures.c.checkpoint_sha256 == gan.checkpoint_sha256
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    gan_id = connection.execute(
        sa.insert(gan_architectures).values(
            dataset=gan.dataset,
            generator=gan.generator,
            discriminator=gan.discriminator,
            generator_checkpoint=gan.generator_checkpoint,
            checkpoint_sha256=gan.checkpoint_sha256,
            code_version=gan.code_version,
            created_at=now,
        )
    ).inserted_primary_key[0]
    connection.execute(sa.insert(training_parameters).values(gan=gan_id, **gan.training))
    return gan_id


def _get_or_create_class(connection: sa.Connection, gan_id: int, name: str) -> int:
    found = connection.execute(
        sa.select(class_names.c.id).where(class_names.c.gan == gan_id, class_names.c.name == name)
    ).scalar_one_or_none()
    if found is not None:
        return found
    return connection.execute(sa.insert(class_names).values(gan=gan_id, name=name)).inserted_primary_key[0]


def _dataset_class_ids(dataset: str, class_name: str):
    gans = sa.select(gan_architectures.c.id).where(gan_architectures.c.dataset == dataset)
    return sa.select(class_names.c.id).where(class_names.c.name == class_name, class_names.c.gan.in_(gans))


def _drop_orphans(connection: sa.Connection, dataset: str) -> None:
    """The dataset's class rows without images, then its GANs without classes or publications
    (their training rows cascade). Other datasets' rows are not looked at."""
    gans = sa.select(gan_architectures.c.id).where(gan_architectures.c.dataset == dataset)
    connection.execute(
        sa.delete(class_names).where(
            class_names.c.gan.in_(gans), ~sa.exists().where(images.c.class_name == class_names.c.id)
        )
    )
    used = sa.union(sa.select(class_names.c.gan), sa.select(publications.c.gan))
    orphans = gans.where(gan_architectures.c.id.not_in(used))
    connection.execute(sa.delete(training_parameters).where(training_parameters.c.gan.in_(orphans)))
    connection.execute(sa.delete(gan_architectures).where(gan_architectures.c.id.in_(orphans)))


def lock_dataset_catalog(connection: sa.Connection, dataset: str) -> None:
    """Serialize this transaction with every other catalog write of ``dataset`` (until it ends).

    On PostgreSQL a transaction advisory lock; SQLite transactions already begin with the
    database's write lock (``BEGIN IMMEDIATE``).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(advisory_key("catalog", dataset))))


def publish_class(engine: sa.Engine, gan: GanRecord, publication: Publication) -> None:
    """Replace the class's images and current publication with ``publication``, all in one transaction."""
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as connection:
        lock_dataset_catalog(connection, publication.dataset)
        connection.execute(
            sa.delete(images).where(
                images.c.class_name.in_(_dataset_class_ids(publication.dataset, publication.class_name))
            )
        )
        connection.execute(
            sa.delete(publications).where(
                publications.c.dataset == publication.dataset, publications.c.class_label == publication.class_name
            )
        )
        gan_id = _get_or_create_gan(connection, gan, now)
        class_id = _get_or_create_class(connection, gan_id, publication.class_name)
        rows = [
            {
                "file_path": f"{publication.class_name}/{f.file_name}",
                "class_name": class_id,
                "md5": f.md5,
                "sample_index": f.sample_index,
                "seed": publication.seed,
                "publication": publication.publication,
                "created_at": now,
            }
            for f in publication.files
        ]
        if rows:
            connection.execute(sa.insert(images), rows)
        connection.execute(
            sa.insert(publications).values(
                dataset=publication.dataset,
                class_label=publication.class_name,
                publication=publication.publication,
                gan=gan_id,
                num_images=len(rows),
                seed=publication.seed,
                image_size=publication.image_size,
                created_at=now,
            )
        )
        _drop_orphans(connection, publication.dataset)


def current_publication(engine: sa.Engine, dataset: str, class_name: str) -> dict | None:
    with engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(publications).where(
                    publications.c.dataset == dataset, publications.c.class_label == class_name
                )
            )
            .mappings()
            .one_or_none()
        )
    return dict(row) if row is not None else None


def class_images(engine: sa.Engine, dataset: str, class_name: str) -> list[dict]:
    """The class's current image rows (file_path, md5, sample_index, seed, publication), by index."""
    query = (
        sa.select(images.c.file_path, images.c.md5, images.c.sample_index, images.c.seed, images.c.publication)
        .where(images.c.class_name.in_(_dataset_class_ids(dataset, class_name)))
        .order_by(images.c.sample_index)
    )
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def dataset_classes(engine: sa.Engine, dataset: str) -> list[str]:
    with engine.connect() as connection:
        return sorted(
            connection.execute(sa.select(publications.c.class_label).where(publications.c.dataset == dataset)).scalars()
        )
