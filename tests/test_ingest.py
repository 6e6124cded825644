"""Ingesting class folders: good files kept, bad files listed with reasons, odd entries skipped."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from bio_assets.core.data.ingest import ClassNameRule, DatasetLayout, ingest_class
from tests.test_imaging import encode, hostile_files


@pytest.fixture
def corpus(tmp_path):
    """A class folder mixing four good formats with every kind of bad entry."""
    root = tmp_path / "data"
    folder = root / "Parabasal"
    folder.mkdir(parents=True)
    good = {
        "a.png": encode(Image.new("RGB", (70, 70), (200, 10, 10)), "PNG"),
        "b.jpg": encode(Image.new("RGB", (64, 64), (10, 200, 10)), "JPEG"),
        "c.bmp": encode(Image.new("RGB", (30, 60), (10, 10, 200)), "BMP"),
        "d.tif": encode(Image.new("RGB", (64, 64), (90, 90, 90)), "TIFF"),
        "e_really_png.jpg": encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG"),
    }
    for name, data in good.items():
        (folder / name).write_bytes(data)
    for name, (data, _) in hostile_files().items():
        (folder / f"bad {name}.png").write_bytes(data)
    (folder / "copy_of_a.png").write_bytes(good["a.png"])
    (folder / ".hidden.png").write_bytes(good["b.jpg"])
    outside = tmp_path / "secret.png"
    outside.write_bytes(encode(Image.new("RGB", (8, 8)), "PNG"))
    (folder / "escape.png").symlink_to(outside)
    os.mkfifo(folder / "pipe.png")
    (folder / "nested").mkdir()
    (folder / "nested" / "ignored_by_pattern.png").write_bytes(good["a.png"])
    return root, folder, good


def test_corpus_keeps_good_files_and_explains_every_other(corpus):
    root, folder, good = corpus
    result = ingest_class(folder, "Parabasal", 64, root)
    assert sorted(result.images.file_names.tolist()) == sorted(good)
    assert result.images.images.shape == (len(good), 64, 64, 3)
    assert result.images.sha256.tolist() == [hashlib.sha256(good[n]).hexdigest() for n in result.images.file_names]
    rejected = {i.file_name: i.reason for i in result.rejected}
    for name, (_, reason) in hostile_files().items():
        assert reason in rejected[f"bad {name}.png"]
    assert rejected["copy_of_a.png"] == "duplicate content of a.png"
    skipped = {i.file_name: i.reason for i in result.skipped}
    assert skipped == {
        ".hidden.png": "hidden file",
        "escape.png": "symbolic link leading outside the dataset folder",
        "pipe.png": "not a regular file",
    }


def test_colour_of_each_good_file_survives(corpus):
    root, folder, _ = corpus
    images = ingest_class(folder, "Parabasal", 64, root).images
    by_name = dict(zip(images.file_names.tolist(), images.images))
    assert tuple(by_name["a.png"][32, 32]) == (200, 10, 10)
    assert tuple(by_name["e_really_png.jpg"][32, 32]) == (1, 2, 3)


def test_symlink_inside_root_is_followed(tmp_path):
    root = tmp_path / "data"
    (root / "shared").mkdir(parents=True)
    (root / "Koilocytotic").mkdir()
    target = root / "shared" / "x.png"
    target.write_bytes(encode(Image.new("RGB", (8, 8), (5, 6, 7)), "PNG"))
    (root / "Koilocytotic" / "link.png").symlink_to(target)
    result = ingest_class(root / "Koilocytotic", "Koilocytotic", 16, root)
    assert result.images.file_names.tolist() == ["link.png"] and not result.issues


def test_class_without_valid_image_fails_naming_the_folder(tmp_path):
    folder = tmp_path / "data" / "Metaplastic"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("nothing here")
    with pytest.raises(ValueError, match=f"class folder {folder} has no valid image"):
        ingest_class(folder, "Metaplastic", 64, tmp_path / "data")


def test_sipakmed_layout_with_pattern_and_prefix_rule(tmp_path):
    """As downloaded: im_<Class>/im_<Class>/ with slide BMPs, .dat files and CROPPED/*.bmp cells."""
    root = tmp_path / "SIPaKMeD"
    for class_name in ("Dyskeratotic", "Superficial-Intermediate"):
        inner = root / f"im_{class_name}" / f"im_{class_name}"
        (inner / "CROPPED").mkdir(parents=True)
        (inner / "001.bmp").write_bytes(encode(Image.new("RGB", (300, 200), (0, 0, 0)), "BMP"))
        (inner / "001_cyt01.dat").write_text("1.0,2.0\n")
        for i, shade in enumerate((50, 120, 240)):
            (inner / "CROPPED" / f"001_0{i}.bmp").write_bytes(encode(Image.new("RGB", (80, 90), (shade, 0, 0)), "BMP"))
    layout = DatasetLayout(root, "**/CROPPED/*.bmp", ClassNameRule(strip_prefix="im_"))
    folders = layout.class_folders()
    assert sorted(folders) == ["Dyskeratotic", "Superficial-Intermediate"]
    result = ingest_class(folders["Dyskeratotic"], "Dyskeratotic", 64, root, pattern=layout.file_pattern)
    assert result.images.file_names.tolist() == [f"im_Dyskeratotic/CROPPED/001_0{i}.bmp" for i in range(3)]
    assert np.unique(result.images.images[:, 10, 10, 0]).tolist() == [50, 120, 240]


def test_class_name_rule_collision_is_an_error(tmp_path):
    for name in ("im_A", "A"):
        (tmp_path / name).mkdir()
    with pytest.raises(ValueError, match="both map to class 'A'"):
        DatasetLayout(tmp_path, "*", ClassNameRule(strip_prefix="im_")).class_folders()


def test_hidden_class_folders_are_ignored(tmp_path):
    for name in (".cache", "Parabasal"):
        (tmp_path / name).mkdir()
    assert list(DatasetLayout(tmp_path).class_folders()) == ["Parabasal"]


def test_fingerprint_from_ingestion_equals_the_sensor_fingerprint(corpus):
    root, folder, _ = corpus
    from bio_assets.core.data.fingerprint import class_fingerprint

    assert ingest_class(folder, "Parabasal", 64, root).fingerprint == class_fingerprint(folder, "*", root)


def test_fingerprint_follows_content_not_mtime(tmp_path):
    from bio_assets.core.data.fingerprint import class_fingerprint

    folder = tmp_path / "A"
    folder.mkdir()
    image = folder / "x.png"
    image.write_bytes(encode(Image.new("RGB", (8, 8), (1, 1, 1)), "PNG"))
    before = class_fingerprint(folder, "*", tmp_path)
    os.utime(image, (0, 0))
    assert class_fingerprint(folder, "*", tmp_path) == before
    image.write_bytes(encode(Image.new("RGB", (8, 8), (2, 1, 1)), "PNG"))
    edited = class_fingerprint(folder, "*", tmp_path)
    assert edited != before
    image.rename(folder / "y.png")
    assert class_fingerprint(folder, "*", tmp_path) not in (before, edited)
