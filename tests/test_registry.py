"""The dataset registry file: parsing, validation, round trip."""

from __future__ import annotations

import pytest

from bio_assets.core.registry import DEFAULT_ENTRIES, DatasetEntry, load_registry, renamed, save_registry


def test_missing_file_means_demo_only(tmp_path):
    assert load_registry(tmp_path / "absent.yaml") == list(DEFAULT_ENTRIES)


def test_round_trip_with_sipakmed_entry(tmp_path):
    entries = [
        DatasetEntry("demo", "builtin:demo", profile="demo"),
        DatasetEntry("sipakmed", "/data/SIPaKMeD", "**/CROPPED/*.bmp", "im_"),
    ]
    save_registry(tmp_path / "r.yaml", entries)
    assert load_registry(tmp_path / "r.yaml") == entries
    assert "strip_prefix: im_" in (tmp_path / "r.yaml").read_text()


@pytest.mark.parametrize(
    "text, message",
    [
        ("datasets: 3", "must hold a 'datasets:' list"),
        ("datasets:\n  - {name: Bad-Name, folder: /x}", "is not allowed"),
        ("datasets:\n  - {name: a, folder: /x, colour: red}", "unknown keys"),
        ("datasets:\n  - {name: a, folder: /x}\n  - {name: a, folder: /y}", "names a dataset twice"),
        ("datasets:\n  - {name: a, folder: /x, file_pattern: ../../etc/*}", "must be a relative glob"),
        ("datasets:\n  - {name: a, folder: /x, profile: fast}", "profile 'fast'"),
        ("datasets:\n  - {name: a, folder: /x, group_pattern: '\\d+'}", "needs a capture group"),
        ("datasets: [", "not valid YAML"),
    ],
)
def test_invalid_registries_are_explained(tmp_path, text, message):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_registry(tmp_path / "r.yaml")


def test_rename_refuses_an_existing_name():
    entries = [DatasetEntry("a", "/x"), DatasetEntry("b", "/y")]
    with pytest.raises(ValueError, match="already exists"):
        renamed(entries, "a", "b")
    assert [e.name for e in renamed(entries, "a", "c")] == ["c", "b"]


def test_the_shipped_example_registry_parses():
    from pathlib import Path

    entries = load_registry(Path(__file__).resolve().parents[1] / "datasets.example.yaml")
    sipakmed = next(e for e in entries if e.name == "sipakmed")
    assert sipakmed.file_pattern == "**/CROPPED/*.bmp" and sipakmed.strip_prefix == "im_"
    assert sipakmed.group_pattern == r"^(\d+)_"
