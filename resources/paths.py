"""Where bio-assets keeps its files, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "BIO_ASSETS_HOME"
REGISTRY_ENV = "BIO_ASSETS_REGISTRY"


def data_home() -> Path:
    """Root of generated data and stored asset values (default ``./.bio_assets``)."""
    return Path(os.environ.get(HOME_ENV, ".bio_assets")).absolute()


def registry_path() -> Path:
    """The dataset registry YAML (default ``./datasets.yaml``; absent means ``demo`` only)."""
    return Path(os.environ.get(REGISTRY_ENV, "datasets.yaml")).absolute()
