"""Where bio-assets keeps its files, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "BIO_ASSETS_HOME"
REGISTRY_ENV = "BIO_ASSETS_REGISTRY"
PRODUCTION_ENV = "BIO_ASSETS_PRODUCTION"


def production() -> bool:
    """Whether this is a production deployment (``BIO_ASSETS_PRODUCTION=1``, set by the image): its
    sensors start stopped, and it refuses to start without a dataset registry."""
    value = os.environ.get(PRODUCTION_ENV, "").strip().lower()
    if value not in ("", "0", "1", "false", "true"):
        raise ValueError(f"{PRODUCTION_ENV}={value!r}: use 1 (production) or 0")
    return value in ("1", "true")


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


def default_sensor_status():
    """Sensors run from the start in development and wait for a person to start them in production,
    where a sensor that starts by itself could launch hours of GPU work on a fresh deployment."""
    import dagster as dg

    return dg.DefaultSensorStatus.STOPPED if production() else dg.DefaultSensorStatus.RUNNING
