"""The bio-assets console script end to end on a tiny folder and a temporary instance."""

from __future__ import annotations

import re

import dagster as dg

from bio_assets.app.cli import main
from bio_assets.core.registry import load_registry
from resources.paths import registry_path


def materialized(dataset: str) -> dict[str, set[str]]:
    with dg.DagsterInstance.get() as instance:
        out = {}
        for key in instance.get_asset_keys(prefix=[dataset]):
            out[key.path[-1]] = set(instance.get_materialized_partitions(key))
        return out


def test_materialize_registers_the_folder_and_runs_every_class(home, tiny_dataset, capsys):
    assert (
        main(
            [
                "materialize",
                "--dataset",
                str(tiny_dataset),
                "--name",
                "tiny",
                "--profile",
                "demo",
                "--select",
                "group:data",
            ]
        )
        == 0
    )
    (entry,) = [e for e in load_registry(registry_path()) if e.name == "tiny"]
    assert entry.folder == str(tiny_dataset)
    classes = {"Dyskeratotic", "Koilocytotic", "Metaplastic"}
    assert {k: v for k, v in materialized("tiny").items()} == {
        "raw_images": classes,
        "image_splits": classes,
        "augmented_dataset": classes,
    }
    out = capsys.readouterr().out
    assert re.search(
        r"tiny/augmented_dataset +Metaplastic +ok +num_images=120, num_augmented=\d+; checks 2/2 passed", out
    )


def test_dataset_folder_from_environment_and_a_selection(home, tiny_dataset, monkeypatch):
    monkeypatch.setenv("BIO_ASSETS_DATASET_DIR", str(tiny_dataset))
    assert main(["materialize", "--select", 'key:"tiny/raw_images"']) == 0
    assert set(materialized("tiny")) == {"raw_images"}


def test_failed_class_exits_non_zero_naming_asset_and_partition(home, tiny_dataset, capsys):
    for path in (tiny_dataset / "Koilocytotic").iterdir():
        path.write_bytes(b"broken")
    assert (
        main(
            [
                "materialize",
                "--dataset",
                str(tiny_dataset),
                "--name",
                "tiny",
                "--select",
                'key:"tiny/augmented_dataset"+ or group:data',
            ]
        )
        == 1
    )
    error = capsys.readouterr().err
    assert "tiny__raw_images [tiny class Koilocytotic]" in error and "has no valid image" in error
    assert (
        "classifier, discriminator, feature_extractors, generator, macro_architecture, searched_cell, trained_gan "
        "[tiny]: skipped because upstream tiny/augmented_dataset" in error
    )
    assert "gan_baselines [tiny]: skipped because upstream" in error and "metric_reports [tiny]: skipped" in error
    assert materialized("tiny")["augmented_dataset"] == {"Dyskeratotic", "Metaplastic"}


def test_bad_selection_and_missing_folder_are_clear_errors(home, tiny_dataset, tmp_path, capsys):
    assert main(["materialize", "--dataset", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["materialize", "--dataset", str(tiny_dataset), "--select", "key:nothing_like_this"]) == 2
    assert "matches no asset" in capsys.readouterr().err


def test_rename_and_remove_need_force_once_materialized(home, tiny_dataset, capsys):
    assert main(["datasets", "add", "tiny", str(tiny_dataset)]) == 0
    assert main(["datasets", "rename", "tiny", "small"]) == 0  # nothing materialized yet
    assert main(["materialize", "--name", "small", "--select", 'key:"small/raw_images"']) == 0
    assert main(["datasets", "rename", "small", "other"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["datasets", "remove", "small"]) == 2
    assert main(["datasets", "remove", "small", "--force"]) == 0
    assert [e.name for e in load_registry(registry_path())] == ["demo"]
    assert any(tiny_dataset.rglob("*.png"))  # the images are untouched
    with dg.DagsterInstance.get() as instance:
        assert instance.get_asset_keys(prefix=["small"])  # history kept


def test_unknown_dataset_name_is_refused(home, capsys):
    assert main(["materialize", "--name", "ghost"]) == 2
    assert "no dataset named 'ghost'" in capsys.readouterr().err
