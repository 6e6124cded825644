"""``bio-assets generate``, ``predict`` and ``export`` end to end on a tiny materialized instance."""

from __future__ import annotations

import csv
import hashlib

import dagster as dg
import numpy as np
import pytest
from PIL import Image

from bio_assets.app.cli import main
from tests.conftest import TINY_CLASSES as CLASSES
from tests.conftest import materialize_tiny_data, tiny_definitions
from tests.test_synthesis_chain import UPSTREAM, materialize_extended, materialize_synthesis


def test_commands_before_anything_is_materialized_fail_clearly(home, tmp_path, capsys):
    assert main(["generate", "--count", "2", "--out", str(tmp_path / "out")]) == 2
    assert "no trained generator has been materialized yet" in capsys.readouterr().err
    (tmp_path / "images").mkdir()
    assert main(["predict", str(tmp_path / "images"), "--out", str(tmp_path / "p.csv")]) == 2
    assert "no classifier has been materialized yet" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "package")]) == 2
    assert "materialize synthetic_dataset first" in capsys.readouterr().err


@pytest.mark.slow(seconds=17)
def test_generate_predict_and_export_on_a_materialized_instance(home, tmp_path, tiny_dataset, capsys):
    defs, assets = tiny_definitions(tmp_path, tiny_dataset)
    with dg.DagsterInstance.get() as instance:
        materialize_tiny_data(defs, assets, instance)
        materialize_synthesis(defs, assets, instance)

    # generate: every class (newest generator), then one class; PNG + MD5 as the dataset's layout
    out = tmp_path / "generated"
    assert main(["generate", "--count", "3", "--out", str(out), "--seed", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == CLASSES
    for name in CLASSES:
        files = sorted((out / name).glob("*.png"))
        assert [f.name for f in files] == [f"{name}_0000{i}.png" for i in range(3)]
        for f in files:
            assert (
                out / name / f"{f.name}.md5"
            ).read_text() == f"{hashlib.md5(f.read_bytes()).hexdigest()}  {f.name}\n"
            assert Image.open(f).size == (64, 64)
    assert (
        main(["generate", "--count", "2", "--class", CLASSES[1], "--model", "tiny", "--out", str(tmp_path / "one")])
        == 0
    )
    assert [p.name for p in (tmp_path / "one").iterdir()] == [CLASSES[1]]
    assert main(["generate", "--count", "2", "--class", "Unknown", "--out", str(tmp_path / "x")]) == 2
    assert "no class 'Unknown'" in capsys.readouterr().err
    assert main(["generate", "--count", "2", "--model", "nope", "--out", str(tmp_path / "x")]) == 2
    unknown = "unknown model 'nope': neither a dataset with a trained generator (tiny) nor a run"
    assert unknown in capsys.readouterr().err
    assert main(["generate", "--count", "3", "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err

    # predict: the classifier (no extended one yet), then the extended classifier once it exists
    folder = tmp_path / "to_classify"
    folder.mkdir()
    for i, name in enumerate(CLASSES):
        source = sorted((tiny_dataset / name).glob("*.png"))[0]
        (folder / f"cell {i}; 'quoted' é.png").write_bytes(source.read_bytes())
    assert main(["predict", str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    assert "by tiny/classifier" in capsys.readouterr().out
    with dg.DagsterInstance.get() as instance:
        assert materialize_extended(defs, assets, instance).success
        classifier_run = instance.get_latest_materialization_event(dg.AssetKey(["tiny", "classifier"])).run_id
    assert main(["predict", str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    assert "by tiny/extended_classifier" in capsys.readouterr().out
    # A past model by its run id (the UI shows 8 characters), though a newer model exists.
    assert main(["predict", str(folder), "--out", str(tmp_path / "p1.csv"), "--model", classifier_run[:8]]) == 0
    assert f"by tiny/classifier (run {classifier_run[:8]})" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "p.csv", encoding="utf-8")))
    assert [r["file_name"] for r in rows] == [f"cell {i}; 'quoted' é.png" for i in range(3)]
    assert all(r["predicted_class"] in CLASSES and 0 < float(r["probability"]) <= 1 for r in rows)
    (folder / "notes.txt").write_text("not an image")
    assert main(["predict", str(folder), "--out", str(tmp_path / "p2.csv")]) == 1
    assert "cannot classify notes.txt: not a recognised image file" in capsys.readouterr().err
    assert len(list(csv.DictReader(open(tmp_path / "p2.csv", encoding="utf-8")))) == 3  # the readable ones are kept
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), "--out", str(tmp_path / "p3.csv")]) == 2
    assert "holds no files" in capsys.readouterr().err

    # export: class folders with MD5 files, the SQL dump and the CSV catalog
    assert main(["export", str(tmp_path / "package")]) == 0
    package = tmp_path / "package"
    assert sorted(p.name for p in package.iterdir()) == sorted([*CLASSES, "catalog.csv", "catalog.sql"])
    catalog = list(csv.DictReader(open(package / "catalog.csv", encoding="utf-8")))
    assert len(catalog) == 3 * 8 and all(
        hashlib.md5((package / r["file_path"]).read_bytes()).hexdigest() == r["md5"] for r in catalog
    )
    assert "CREATE TABLE gan_architectures" in (package / "catalog.sql").read_text()
    assert np.asarray(Image.open(package / catalog[0]["file_path"])).shape == (64, 64, 3)
    assert main(["export", str(package)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    # --publishable: every class passed its gates on this generator's images.
    assert main(["generate", "--count", "2", "--publishable", "--out", str(tmp_path / "pub")]) == 0
    assert sorted(p.name for p in (tmp_path / "pub").iterdir()) == CLASSES
    capsys.readouterr()
    with dg.DagsterInstance.get() as instance:  # a newer generator whose images no gate has judged
        key = dg.AssetKey(["tiny", "trained_gan"])
        config = {**UPSTREAM["tiny__trained_gan"]["config"], "seed": 1}
        assert dg.materialize(
            assets, instance=instance, resources=defs.resources, selection=[key],
            run_config={"ops": {"tiny__trained_gan": {"config": config}}},
        ).success  # fmt: skip
    assert main(["generate", "--count", "2", "--publishable", "--out", str(tmp_path / "refused")]) == 2
    refusal = capsys.readouterr().err
    assert "--publishable: refused, nothing written" in refusal and "not this generator's" in refusal
    assert all(name in refusal for name in CLASSES) and not (tmp_path / "refused").exists()
