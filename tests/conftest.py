"""Shared fixtures: isolated data folders and instances, tiny generated datasets."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage
from PIL import Image

from bio_assets.core.demo_data import DEMO_CLASSES, render_cell_image


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path, monkeypatch):
    """Every test gets its own data home and registry; nothing touches the checkout."""
    monkeypatch.setenv("BIO_ASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIO_ASSETS_REGISTRY", str(tmp_path / "datasets.yaml"))
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)


# Test modules that create Dagster instances or resolve definitions.
DAGSTER_MODULES = {"test_automation", "test_cli", "test_cnn_search_chain", "test_data_chain", "test_definitions", "test_gan_chain", "test_postgres_instance"}


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


@pytest.fixture
def tiny_instance(tmp_path, tiny_dataset):
    """Definitions over the tiny dataset (files under ``tmp_path``), and a test instance with
    its data group materialized for every class: ``(defs, assets, instance)``."""
    from bio_assets.core.registry import DatasetEntry, save_registry
    from bio_assets.definitions import build_definitions
    from resources.compute import ComputeResource
    from resources.image_dataset import ImageDatasetResource
    from resources.io_manager import AssetFileIOManager
    from resources.search_executor import SearchExecutorResource

    entries = [DatasetEntry("tiny", str(tiny_dataset), profile="demo")]
    save_registry(tmp_path / "r.yaml", entries)
    resources = {
        "image_dataset": ImageDatasetResource(registry_file=str(tmp_path / "r.yaml")),
        "io_manager": AssetFileIOManager(root=str(tmp_path / "storage")),
        "search_executor": SearchExecutorResource(state_root=str(tmp_path / "search")),
        "compute": ComputeResource(device="cpu", amp=False),
    }
    defs = build_definitions(entries, resources)
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    config = {"ops": {"tiny__augmented_dataset": {"config": {"target_per_class": 12}}}}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tiny__classes", TINY_CLASSES)
        for class_name in TINY_CLASSES:
            result = dg.materialize(assets, instance=instance, partition_key=class_name, resources=defs.resources, selection=dg.AssetSelection.groups("data"), run_config=config)
            assert result.success
        yield defs, assets, instance
