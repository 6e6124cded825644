"""Shared fixtures: isolated data folders and instances, tiny generated datasets."""

from __future__ import annotations

import gc
import os
import uuid
import warnings
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage
from PIL import Image

from bio_assets.core.data.demo_data import DEMO_CLASSES, render_cell_image

POSTGRES_SERVER = os.environ.get("BIO_ASSETS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path, monkeypatch):
    """Every test gets its own data home and registry; nothing touches the checkout."""
    monkeypatch.setenv("BIO_ASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIO_ASSETS_REGISTRY", str(tmp_path / "datasets.yaml"))
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)


# Test modules that create Dagster instances or resolve definitions.
DAGSTER_MODULES = {
    "test_automation",
    "test_cli",
    "test_cnn_search_chain",
    "test_data_chain",
    "test_definitions",
    "test_gan_chain",
    "test_postgres_instance",
    "test_synthesis_chain",
    "test_user_commands",
}


@pytest.fixture(autouse=True)
def isolated_defs_state_storage(request):
    """Each test starts without a current Dagster defs-state storage.

    Every DagsterInstance installs its storage in a process-wide ContextVar and restores
    the previous one when disposed, also when the garbage collector disposes it, at any
    moment. Collecting first lets instances of earlier tests (whose temporary folders are
    gone) dispose now, not in the middle of this test, which then starts clean.
    """
    if request.module.__name__.rpartition(".")[2] in DAGSTER_MODULES:
        gc.collect()  # a full collection costs ~0.3 s here: only where instances live
    with set_defs_state_storage(None):
        yield


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A persistent Dagster instance folder as ``$DAGSTER_HOME`` (what the CLI opens)."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    return dagster_home


def write_class_images(folder: Path, class_name: str, count: int, seed: int = 0, size: int = 64) -> list[Path]:
    """``count`` demo-style cell images of ``class_name`` as PNG files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    index = DEMO_CLASSES.index(class_name)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:03d}.png"
        Image.fromarray(render_cell_image(class_name, np.random.default_rng([seed, index, i]), size)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """Three classes of 8 images each, 64x64 PNG."""
    root = tmp_path / "tiny"
    for class_name in DEMO_CLASSES[:3]:
        write_class_images(root / class_name, class_name, 8)
    return root


TINY_CLASSES = list(DEMO_CLASSES[:3])


def tiny_definitions(tmp_path: Path, tiny_dataset: Path) -> tuple[dg.Definitions, list[dg.AssetsDefinition]]:
    """Definitions over the tiny dataset with every file under ``tmp_path``, and its assets.
    The dataset is registered at ``BIO_ASSETS_REGISTRY`` too, as the CLI reads it there."""
    from bio_assets.core.registry import DatasetEntry, save_registry
    from bio_assets.definitions import build_definitions
    from resources.compute import ComputeResource
    from resources.image_dataset import ImageDatasetResource
    from resources.io_manager import AssetFileIOManager
    from resources.paths import registry_path
    from resources.search_executor import SearchExecutorResource

    entries = [DatasetEntry("tiny", str(tiny_dataset), profile="demo")]
    save_registry(tmp_path / "r.yaml", entries)
    save_registry(registry_path(), entries)
    resources = {
        "image_dataset": ImageDatasetResource(registry_file=str(tmp_path / "r.yaml")),
        "io_manager": AssetFileIOManager(root=str(tmp_path / "storage")),
        "search_executor": SearchExecutorResource(state_root=str(tmp_path / "search")),
        "compute": ComputeResource(device="cpu", amp=False),
    }
    defs = build_definitions(entries, resources)
    return defs, [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]


def materialize_tiny_data(defs: dg.Definitions, assets: list, instance: dg.DagsterInstance) -> None:
    """The data group of every tiny class, 12 augmented images per class."""
    config = {"ops": {"tiny__augmented_dataset": {"config": {"target_per_class": 12}}}}
    instance.add_dynamic_partitions("tiny__classes", TINY_CLASSES)
    for class_name in TINY_CLASSES:
        result = dg.materialize(
            assets,
            instance=instance,
            partition_key=class_name,
            resources=defs.resources,
            selection=dg.AssetSelection.groups("data"),
            run_config=config,
        )
        assert result.success


@pytest.fixture
def tiny_instance(tmp_path, tiny_dataset):
    """Definitions over the tiny dataset (files under ``tmp_path``), and a test instance with
    its data group materialized for every class: ``(defs, assets, instance)``."""
    defs, assets = tiny_definitions(tmp_path, tiny_dataset)
    with dg.instance_for_test() as instance:
        materialize_tiny_data(defs, assets, instance)
        yield defs, assets, instance


@pytest.fixture
def postgres_database():
    """A fresh database on the real PostgreSQL server for this test, dropped afterwards."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5)
    except psycopg2.OperationalError as err:
        if os.environ.get("CI"):
            raise  # CI starts PostgreSQL (.ci/run); not reaching it there is a failure
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_SERVER}: {err}")
    admin.autocommit = True
    name = f"bio_assets_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
