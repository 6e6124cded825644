"""Shared fixtures: isolated data folders and instances, tiny generated datasets."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage
from PIL import Image

from bio_assets.core.data.demo_data import DEMO_CLASSES, render_cell_image

POSTGRES_SERVER = os.environ.get("BIO_ASSETS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def pytest_configure(config):
    """Under pytest-xdist (make test: several workers on few cores) each worker computes on one
    thread, and so does every process it starts (the service tests' runs, killed subprocesses):
    they share the cores without oversubscription, where two-thread processes would spin-wait on
    each other's cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by child processes


def pytest_collection_modifyitems(config, items):
    """The slow tests first, longest first (``@pytest.mark.slow(seconds=...)``): xdist hands the
    first tests out one per worker, so the long ones overlap with each other and with the rest
    instead of queueing on one worker while the others idle."""

    def expected_seconds(item) -> float:
        marker = item.get_closest_marker("slow")
        return marker.kwargs.get("seconds", 1.0) if marker else 0.0

    items.sort(key=expected_seconds, reverse=True)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path, monkeypatch):
    """Every test gets its own data home and registry; nothing touches the checkout."""
    monkeypatch.setenv("BIO_ASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIO_ASSETS_REGISTRY", str(tmp_path / "datasets.yaml"))
    # A service a test's client starts stops 3 s after its last client (60 s for people).
    monkeypatch.setenv("BIO_ASSETS_SERVICE_IDLE_SECONDS", "3")
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


def tiny_definitions(
    tmp_path: Path, tiny_dataset: Path, entry=None
) -> tuple[dg.Definitions, list[dg.AssetsDefinition]]:
    """Definitions over the tiny dataset (``entry``, default: registered with the demo profile
    and no settings of its own) with every file under ``tmp_path``, and its assets.
    The dataset is registered at ``BIO_ASSETS_REGISTRY`` too, as the CLI reads it there."""
    from bio_assets.core.registry import DatasetEntry, save_registry
    from bio_assets.definitions import build_definitions
    from resources.compute import ComputeResource
    from resources.image_dataset import ImageDatasetResource
    from resources.io_manager import AssetFileIOManager
    from resources.paths import registry_path
    from resources.search_executor import SearchExecutorResource

    entries = [entry or DatasetEntry("tiny", str(tiny_dataset), profile="demo")]
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


# Registry settings that make the whole graph of a tiny dataset run in seconds per asset: what a
# run launched from the UI (no run config) or the CLI uses for that dataset.
TINY_GAN_SHAPE = {"image_size": 32, "generator_width": 16, "discriminator_width": 8, "batch_size": 8}
TINY_SEARCH = {"population_size": 2, "cycles": 1, "sample_size": 1, "epochs": 1, "input_size": 16}
TINY_GAN_SEARCH = {
    **TINY_GAN_SHAPE,
    "population_size": 2,
    "cycles": 1,
    "sample_size": 1,
    "epochs": 1,
    "fid_samples": 12,
}
TINY_GAN_RUN = {**TINY_GAN_SHAPE, "iterations": 4, "fid_every": 4, "checkpoint_every": 4, "fid_samples": 12}
TINY_SETTINGS = {
    "augmented_dataset": {"target_per_class": 12},
    "searched_cell": TINY_SEARCH,
    "macro_architecture": TINY_SEARCH,
    "classifier": {"epochs": 1, "seeds": 1},
    "baseline_classifiers": {"epochs": 1, "seeds": 1, "batch_size": 16, "input_size": 32},
    "optimizer_comparison": {"epochs": 1, "seeds": 1},
    "feature_extractors": {"biocnn1_epochs": 1, "biocnn2_epochs": 1, "width": 8},
    "generator": TINY_GAN_SEARCH,
    "discriminator": TINY_GAN_SEARCH,
    "trained_gan": TINY_GAN_RUN,
    "gan_baselines": TINY_GAN_RUN,
    # A 4-iteration GAN's FID is meaningless: the FID gate is opened (each gate has its own test).
    "synthetic_dataset": {"images_per_class": 8, "max_class_fid": 1e9},
    "extended_classifier": {"epochs": 1, "seeds": 1},
}


def tiny_entry(folder: Path, **changes):
    """A registry entry of the tiny dataset whose whole graph runs in about a minute of compute."""
    from bio_assets.core.registry import DatasetEntry

    values = {
        "name": "tiny", "folder": str(folder), "profile": "demo", "settings": TINY_SETTINGS,
        "cnn_baselines": ("lenet5",), "optimizers": ("adam",), "gan_baselines": ("dcgan",),
    }  # fmt: skip
    return DatasetEntry(**{**values, **changes})


@pytest.fixture
def service_home(tmp_path, tiny_dataset, monkeypatch):
    """``$DAGSTER_HOME`` with the project's dagster.yaml (run launcher, monitoring, pools), data home
    and registry holding the tiny dataset, all in the environment the CLI and services inherit."""
    from bio_assets.core.registry import save_registry

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((Path(__file__).resolve().parents[1] / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    save_registry(tmp_path / "datasets.yaml", [tiny_entry(tiny_dataset)])
    return home


def wait_for(predicate, timeout: float, what: str, every: float = 1.0):
    """``predicate()``'s first true value, polled every ``every`` s; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def service_stopped(home: Path) -> bool:
    """Whether no supervisor serves the instance at ``home`` and its state file is gone."""
    from bio_assets.app.service import ServiceFiles, lock_held

    files = ServiceFiles.of(home)
    return not lock_held(files.lock) and not files.state.exists()


@contextmanager
def running_ui(home: Path, *, cwd: Path, port: int = 0):
    """``bio-assets ui`` as a user starts it (a process of its own), until the block ends with Ctrl-C.
    Yields the process and the state of the service once its webserver proves its token."""
    from bio_assets.app.service import ServiceFiles, running_service

    command = [sys.executable, "-m", "bio_assets.app.cli", "ui", "--port", str(port)]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        state = wait_for(lambda: process.poll() is None and running_service(ServiceFiles.of(home)), 300, "the UI")
        yield process, state
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGINT)  # the second Ctrl-C stops it at once
                process.wait(timeout=60)
