"""The code location loads; every asset is grouped and described; imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pytest

from bio_assets.core.registry import DatasetEntry
from bio_assets.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[1]
# Imports point one way: core <- resources <- assets, checks <- jobs <- definitions <- app.
LAYER_FORBIDDEN = {
    "bio_assets/core": (
        "dagster",
        "resources",
        "jobs",
        "bio_assets.assets",
        "bio_assets.checks",
        "bio_assets.definitions",
        "bio_assets.app",
    ),
    "resources": ("jobs", "bio_assets.assets", "bio_assets.checks", "bio_assets.definitions", "bio_assets.app"),
    "bio_assets/assets": ("jobs", "bio_assets.definitions", "bio_assets.app"),
    "bio_assets/checks": ("jobs", "bio_assets.definitions", "bio_assets.app"),
    "jobs": ("bio_assets.definitions", "bio_assets.app"),
}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", list(LAYER_FORBIDDEN))
def test_imports_point_one_way(layer):
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (ROOT / layer).rglob("*.py")
        for module in imported_modules(path)
        if any(module == f or module.startswith(f + ".") for f in LAYER_FORBIDDEN[layer])
    ]
    assert not offenders, offenders


def test_default_definitions_load_with_the_demo_dataset():
    from bio_assets.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"demo/raw_images", "demo/image_splits", "demo/augmented_dataset"} <= keys
    for sensor in ("dataset_sensor", "follow_upstream", "training_succeeded_notification"):
        assert defs.resolve_sensor_def(sensor) is not None
    assert defs.resolve_job_def("demo__demo_pipeline").partitions_def is not None
    assert defs.resolve_job_def("demo__demo_pipeline").tags["bio_assets/profile"] == "demo"


def test_assets_carry_kinds_owners_code_references_and_their_gpu_need():
    entry = DatasetEntry("demo", "builtin:demo", profile="demo", owners=("team:cytology", "ana@lab.org"))
    graph = build_definitions([entry]).resolve_asset_graph()
    node = graph.get(dg.AssetKey(["demo", "trained_gan"]))
    assert node.kinds == {"pytorch"} and node.owners == ["team:cytology", "ana@lab.org"]
    assert "dagster/code_references" in node.metadata
    assert node.pools == {"gpu"}  # every network runs in the gpu pool...
    assert graph.get(dg.AssetKey(["demo", "synthetic_dataset"])).kinds == {"pytorch", "sqlite"}
    assert graph.get(dg.AssetKey(["demo", "raw_images"])).pools == set()  # ...and nothing else does
    networks = {k.path[-1] for k in graph.get_all_asset_keys() if graph.get(k).pools == {"gpu"}}
    assert networks == {
        "searched_cell", "macro_architecture", "classifier", "baseline_classifiers", "optimizer_comparison",
        "feature_extractors", "generator", "discriminator", "trained_gan", "gan_baselines", "synthetic_dataset",
        "extended_classifier", "metric_reports", "data_efficiency",
    }  # fmt: skip


def test_synthesis_is_reached_from_the_class_partitions_of_a_ui_backfill():
    """The UI's "Materialize all" targets the selected class partitions of the roots and their
    partitioned descendants: synthetic_dataset must be one through its class's image_splits."""
    graph = build_definitions([DatasetEntry("demo", "builtin:demo")]).resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["demo", "synthetic_dataset"])).parent_keys
    assert dg.AssetKey(["demo", "image_splits"]) in parents
    mapping = graph.get_partition_mapping(
        dg.AssetKey(["demo", "synthetic_dataset"]), dg.AssetKey(["demo", "image_splits"])
    )
    assert isinstance(mapping, dg.IdentityPartitionMapping) or type(mapping).__name__ == "IdentityPartitionMapping"


def test_every_asset_has_a_group_and_one_sentence_description():
    defs = build_definitions([DatasetEntry("demo", "builtin:demo", profile="demo")])
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        description = (node.description or "").strip()
        assert node.group_name and node.group_name != "default", key
        assert description.endswith(".") and description.count(". ") == 0 and "\n" not in description, (
            key,
            description,
        )


def test_each_registered_dataset_gets_its_own_prefixed_graph_and_partitions():
    defs = build_definitions(
        [
            DatasetEntry("demo", "builtin:demo", profile="demo"),
            DatasetEntry("sipakmed", "/data/SIPaKMeD", "**/CROPPED/*.bmp", "im_"),
        ]
    )
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for dataset in ("demo", "sipakmed"):
        assert {f"{dataset}/raw_images", f"{dataset}/image_splits", f"{dataset}/augmented_dataset"} <= keys
    parents = graph.get(dg.AssetKey(["sipakmed", "image_splits"])).parent_keys
    assert parents == {dg.AssetKey(["sipakmed", "raw_images"])}
    names = {graph.get(dg.AssetKey([d, "raw_images"])).partitions_def.name for d in ("demo", "sipakmed")}
    assert names == {"demo__classes", "sipakmed__classes"}
