"""The ``catalog`` resource: where synthetic images are published and the SQL catalog that lists them."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from bio_assets.core.synthesis.catalog import make_engine
from bio_assets.core.synthesis.publish import SyntheticStore
from resources.paths import data_home

# A deployment names its catalog database here (e.g. PostgreSQL shared by every worker).
CATALOG_URL_ENV = "BIO_ASSETS_CATALOG_URL"


@lru_cache(maxsize=8)
def _engine(url: str) -> sa.Engine:
    return make_engine(url)


class CatalogResource(dg.ConfigurableResource):
    """SQL catalog (SQLite file by default, PostgreSQL by URL) and the folder of published images."""

    url: str = Field(
        default_factory=lambda: os.environ.get(CATALOG_URL_ENV, ""),
        description="SQLAlchemy URL, e.g. postgresql+psycopg2://user@host/db; empty: <data home>/catalog.sqlite",
    )
    root: str = Field(default="", description="folder of <dataset>/<class>/ publications; empty: <data home>/synthetic")

    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: the catalog's kind in the UI."""
        backend = sa.engine.make_url(self.resolved_url()).get_backend_name()
        return "postgres" if backend == "postgresql" else backend

    def resolved_url(self) -> str:
        return self.url or f"sqlite:///{data_home() / 'catalog.sqlite'}"

    def store(self) -> SyntheticStore:
        root = Path(self.root) if self.root else data_home() / "synthetic"
        if not self.url:
            data_home().mkdir(parents=True, exist_ok=True)
        return SyntheticStore(_engine(self.resolved_url()), root)

    def describe(self) -> dict[str, str]:
        """Dialect and URL with any password hidden, for metadata."""
        url = sa.engine.make_url(self.resolved_url())
        return {"catalog_dialect": url.get_backend_name(), "catalog_url": url.render_as_string(hide_password=True)}
