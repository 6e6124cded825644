"""Hostile inputs cost one file, never a class: a text-chunk bomb, a sparse multi-GB file, a
directory link out of the dataset, a picture filed under two classes, odd class names, formats
left out by configuration; and the reduced-scale JPEG decode stays close to the full one."""

from __future__ import annotations

import builtins
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import bio_assets.core.data.twins as twins_module
from bio_assets.core.cnn.prediction import predict_folder
from bio_assets.core.data.class_names import check_class_name
from bio_assets.core.data.fingerprint import class_fingerprint
from bio_assets.core.data.imaging import (
    JPEG_DRAFT_GAP,
    JPEG_DRAFT_TOLERANCE,
    DecodeLimits,
    ImageRejected,
    decode_image,
    decode_rgb,
)
from bio_assets.core.data.ingest import ClassNameRule, DatasetLayout, ingest_class
from bio_assets.core.data.twins import find_cross_class_twins
from tests.test_imaging import encode, png_chunk

SPARSE_BYTES = 3 * 1024**3  # 3 GiB, allocated as a hole: nothing is written


def text_chunk_bomb() -> bytes:
    """A ~4 KB PNG whose zTXt chunk inflates to 4 MB, past Pillow's text-chunk limit (1 MB)."""
    png = encode(Image.new("RGB", (8, 8), (5, 5, 5)), "PNG")
    chunk = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"A" * (4 * 1024 * 1024), 9))
    return png[:33] + chunk + png[33:]  # after the 8-byte signature and the 25-byte IHDR chunk


def picture(value: int, size: int = 24) -> Image.Image:
    array = np.random.default_rng(value).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(array)


def test_text_chunk_bomb_is_a_per_file_rejection():
    data = text_chunk_bomb()
    assert len(data) < 8192
    with pytest.raises(ImageRejected, match="unreadable image header: ValueError"):
        decode_image(data, size=16)


def test_sparse_multi_gigabyte_file_is_rejected_by_size_without_being_read(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cells"
    folder.mkdir(parents=True)
    picture(1).save(folder / "good.png")
    (folder / "text bomb.png").write_bytes(text_chunk_bomb())
    huge = folder / "huge.png"
    with open(huge, "wb") as handle:
        handle.truncate(SPARSE_BYTES)
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: opened.append(Path(file)) or real_open(file, *a, **k))
    result = ingest_class(folder, "cells", 16, tmp_path / "data")
    fingerprint = class_fingerprint(folder, "*", tmp_path / "data")
    assert huge not in opened  # neither ingestion nor the fingerprint read a byte of it
    reasons = {issue.file_name: issue.reason for issue in result.rejected}
    assert reasons["huge.png"] == f"file is {SPARSE_BYTES} bytes, above the limit of {DecodeLimits().max_file_bytes}"
    assert reasons["text bomb.png"].startswith("unreadable image header: ValueError: ")
    assert list(result.images.file_names) == ["good.png"]
    assert result.fingerprint == fingerprint


def test_directory_link_out_of_the_dataset_is_skipped_whatever_the_pattern(tmp_path):
    root = tmp_path / "data"
    cropped = root / "im_Parabasal" / "slide1" / "CROPPED"
    cropped.mkdir(parents=True)
    picture(1).save(cropped / "in.bmp")
    outside = tmp_path / "elsewhere" / "CROPPED"
    outside.mkdir(parents=True)
    picture(2).save(outside / "secret.bmp")
    (root / "im_Parabasal" / "escape").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "im_Parabasal" / "slide1" / "loop").symlink_to(root / "im_Parabasal", target_is_directory=True)
    layout = DatasetLayout(root, "**/CROPPED/*.bmp", ClassNameRule(strip_prefix="im_"))
    folder = layout.class_folders()["Parabasal"]
    result = ingest_class(folder, "Parabasal", 16, root, pattern=layout.file_pattern)
    assert list(result.images.file_names) == ["slide1/CROPPED/in.bmp"]  # once, though the loop leads back
    assert {(i.file_name, i.reason) for i in result.skipped} == {
        ("escape", "symbolic link leading outside the dataset folder")
    }


def test_file_links_out_of_the_dataset_are_skipped_under_a_recursive_pattern(tmp_path):
    root = tmp_path / "data"
    (root / "cells" / "sub").mkdir(parents=True)
    picture(1).save(root / "cells" / "sub" / "a.png")
    picture(2).save(tmp_path / "secret.png")
    (root / "cells" / "sub" / "b.png").symlink_to(tmp_path / "secret.png")
    result = ingest_class(root / "cells", "cells", 16, root, pattern="**/*.png")
    assert list(result.images.file_names) == ["sub/a.png"]
    assert [i.file_name for i in result.skipped] == ["sub/b.png"]


def test_a_picture_in_two_classes_is_kept_in_neither_and_named_with_both(tmp_path, monkeypatch):
    root = tmp_path / "data"
    for seed, name in enumerate(("Ähre Zelle", "b", "c"), start=10):  # (str hash() is salted per process)
        (root / name).mkdir(parents=True)
        picture(seed).save(root / name / "own.png")
    shared = encode(picture(1), "PNG")
    (root / "Ähre Zelle" / "same bytes.png").write_bytes(shared)
    (root / "b" / "copy.png").write_bytes(shared)
    picture(2).save(root / "b" / "as png.png")
    picture(2).save(root / "c" / "as bmp.bmp")  # same pixels, other format
    layout = DatasetLayout(root)
    cache = tmp_path / "cache" / "pixels.json"
    twins = find_cross_class_twins(layout, cache_path=cache)
    assert twins.rows() == [
        {"class": "b", "file": "as png.png", "classes": "b, c"},
        {"class": "b", "file": "copy.png", "classes": "b, Ähre Zelle"},
        {"class": "c", "file": "as bmp.bmp", "classes": "b, c"},
        {"class": "Ähre Zelle", "file": "same bytes.png", "classes": "b, Ähre Zelle"},
    ]
    kept = {}
    for name, folder in layout.class_folders().items():
        result = ingest_class(folder, name, 16, root, twins=twins)
        kept[name] = list(result.images.file_names)
        for issue in result.rejected:
            assert issue.reason.startswith("cross-class twin: same pixels as ")
    assert kept == {"Ähre Zelle": ["own.png"], "b": ["own.png"], "c": ["own.png"]}
    assert "'b' and 'c'" in twins.reason("c", "as bmp.bmp") and "b/as png.png" in twins.reason("c", "as bmp.bmp")
    # A second call (the next class's run) decodes nothing: the digests come from the cache.
    monkeypatch.setattr(twins_module, "pixel_digest", lambda *a, **k: pytest.fail("decoded again"))
    assert find_cross_class_twins(layout, cache_path=cache) == twins


@pytest.mark.parametrize("name", ["Ähre Zelle", "x-y", "細胞 1", "O'Brien (2)", "a.b"])
def test_class_names_with_spaces_and_any_letters_are_accepted(name):
    assert check_class_name(name) == name


@pytest.mark.parametrize(
    "name, problem",
    [
        ("", "empty"),
        (".", "names a folder"),
        ("..", "names a folder"),
        (".x", "starts with '.'"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("a\nb", "control character U+000A"),
        ("a\x00b", "control character U+0000"),
        ("a\u202eb", "U+202E"),  # right-to-left override
        ("a\udcffb", "U+DCFF"),  # an undecodable file-name byte
        (" a", "white space"),
        ("a...b", "partition-range"),
        ("a,b", "partition syntax"),
        ("é" * 40, "above the limit"),
    ],
)
def test_class_names_that_break_a_step_of_the_graph_are_rejected(name, problem):
    with pytest.raises(ValueError, match="is not allowed: .*" + re.escape(problem)):
        check_class_name(name)


def test_a_class_folder_mapping_to_a_bad_class_name_is_rejected_with_its_folder(tmp_path):
    (tmp_path / "im_Parabasal").mkdir()
    (tmp_path / "im_.x").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*im_\.x: class name '\.x' is not allowed.*rename the folder"):
        DatasetLayout(tmp_path, "*", ClassNameRule(strip_prefix="im_")).class_folders()


def test_accepted_formats_are_honoured(tmp_path):
    folder = tmp_path / "cells"
    folder.mkdir()
    picture(1).save(folder / "a.png")
    picture(2).save(folder / "b.bmp")
    result = ingest_class(folder, "cells", 16, tmp_path, formats=("PNG",))
    assert list(result.images.file_names) == ["a.png"]
    assert [(i.file_name, i.reason) for i in result.rejected] == [("b.bmp", "unsupported format BMP (accepted: PNG)")]


def test_large_jpeg_is_decoded_at_reduced_scale_within_tolerance_of_the_full_decode():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1024, 0:1024] / 1024.0
    smooth = np.stack([np.sin(6 * x + 1), np.cos(5 * y), np.sin(4 * (x + y))], axis=-1) * 90 + 128
    array = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    data = encode(Image.fromarray(array), "JPEG", quality=90)
    assert decode_rgb(data, draft_size=64 * JPEG_DRAFT_GAP).size == (128, 128)  # 1/8 scale: still 2x the target
    fast = decode_image(data, size=64).astype(np.float64)
    full = decode_image(data, size=64, jpeg_draft=False).astype(np.float64)
    assert np.abs(fast - full).mean() <= JPEG_DRAFT_TOLERANCE
    assert np.abs(fast - full).max() <= 4
    small = encode(Image.fromarray(array[:100, :100]), "JPEG")  # below 2x the draft size: decoded whole
    assert decode_rgb(small, draft_size=64 * 3).size == (100, 100)


def test_predict_classifies_the_good_files_and_explains_the_hostile_ones(tmp_path):
    folder = tmp_path / "to classify"
    folder.mkdir()
    picture(1).save(folder / "good.png")
    (folder / "bomb.png").write_bytes(text_chunk_bomb())
    with open(folder / "huge.tif", "wb") as handle:
        handle.truncate(SPARSE_BYTES)
    (folder / "escape.png").symlink_to(Path(__file__))
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    predictions, failures = predict_folder(model, ("a", "b"), 16, folder, torch.device("cpu"))
    assert [p.file_name for p in predictions] == ["good.png"]
    reasons = dict(failures)
    assert set(reasons) == {"bomb.png", "huge.tif", "escape.png"}
    assert reasons["bomb.png"].startswith("unreadable image header: ValueError")
    assert reasons["huge.tif"].startswith(f"file is {SPARSE_BYTES} bytes")
    assert reasons["escape.png"] == "symbolic link leading outside the dataset folder"


def test_decode_errors_of_any_type_become_rejections(monkeypatch):
    """Whatever a Pillow plugin raises (here IndexError from a broken EXIF block) costs the file only."""
    import bio_assets.core.data.imaging as imaging

    def broken(image):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(imaging.ImageOps, "exif_transpose", broken)
    with pytest.raises(ImageRejected, match="IndexError: tuple index out of range"):
        decode_image(encode(picture(3), "PNG"), size=8)
