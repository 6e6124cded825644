"""Where bio-assets keeps its files, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "BIO_ASSETS_HOME"
REGISTRY_ENV = "BIO_ASSETS_REGISTRY"


def _beside_the_instance() -> Path:
    """Where the defaults live: the folder that holds ``$DAGSTER_HOME`` (the project folder for ``make``,
    whose instance is ``.dagster_home/``), so that every command and the service of one instance read
    the same files whatever folder they start in; the current folder without an instance."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).absolute().parent if home else Path.cwd()


def data_home() -> Path:
    """Root of generated data and stored asset values (default ``.bio_assets`` beside the instance)."""
    value = os.environ.get(HOME_ENV)
    return Path(value).absolute() if value else _beside_the_instance() / ".bio_assets"


def registry_path() -> Path:
    """The dataset registry YAML (default ``datasets.yaml`` beside the instance; absent means ``demo`` only)."""
    value = os.environ.get(REGISTRY_ENV)
    return Path(value).absolute() if value else _beside_the_instance() / "datasets.yaml"
