"""Decoding: every pixel mode to correct 8-bit RGB, format by content, hostile files rejected."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bio_assets.core.data.imaging import DecodeLimits, ImageRejected, decode_image


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_rgb_png_resized_to_requested_size():
    image = Image.new("RGB", (100, 50), (10, 200, 30))
    out = decode_image(encode(image, "PNG"), size=64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert tuple(out[32, 32]) == (10, 200, 30)


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    out = decode_image(encode(rgba, "PNG"), size=8)
    assert tuple(out[4, 4]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (255, 0, 0)


def test_half_transparent_la_blends_with_white():
    la = Image.new("LA", (4, 4), (0, 128))
    out = decode_image(encode(la, "PNG"), size=4)
    assert abs(int(out[0, 0, 0]) - 127) <= 1 and len(set(out[0, 0].tolist())) == 1


def test_palette_with_transparency_composited_on_white():
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.info["transparency"] = 1
    out = decode_image(encode(palette, "PNG", transparency=1), size=4)
    assert tuple(out[0, 0]) == (255, 255, 255)


def test_palette_without_transparency_keeps_colours():
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    assert tuple(decode_image(encode(palette, "PNG"), size=4)[1, 1]) == (12, 34, 56)


def test_grayscale_and_bilevel_are_replicated():
    gray = decode_image(encode(Image.new("L", (4, 4), 77), "PNG"), size=4)
    assert tuple(gray[0, 0]) == (77, 77, 77)
    bilevel = decode_image(encode(Image.new("1", (4, 4), 1), "BMP"), size=4)
    assert tuple(bilevel[0, 0]) == (255, 255, 255)


@pytest.mark.parametrize("value, expected", [(65535, 255), (32768, 128), (257, 1), (0, 0)])
def test_sixteen_bit_grayscale_is_scaled_not_clipped(value, expected):
    array = np.full((4, 4), value, dtype=np.uint16)
    data = encode(Image.fromarray(array), "PNG")  # a 16-bit grayscale PNG
    assert tuple(decode_image(data, size=4)[0, 0]) == (expected,) * 3


def test_sixteen_bit_tiff_is_scaled():
    array = np.full((4, 4), 40000, dtype=np.uint16)
    out = decode_image(encode(Image.fromarray(array), "TIFF"), size=4)
    assert tuple(out[0, 0]) == (round(40000 * 255 / 65535),) * 3


def test_float_tiff_in_unit_range_is_scaled():
    array = np.full((4, 4), 0.5, dtype=np.float32)
    assert tuple(decode_image(encode(Image.fromarray(array), "TIFF"), size=4)[0, 0]) == (128, 128, 128)


def test_cmyk_jpeg_and_tiff_become_rgb():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    for fmt in ("JPEG", "TIFF"):
        red, green, blue = decode_image(encode(cmyk, fmt), size=8)[4, 4].tolist()
        assert red > 240 and green < 15 and blue < 15, fmt


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # red left half
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise rotation
    out = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95), size=64)
    # After rotating clockwise the red half is on top.
    assert out[5, 32, 0] > 200 and out[5, 32, 2] < 60
    assert out[58, 32, 2] > 200 and out[58, 32, 0] < 60


def test_format_comes_from_content_not_extension():
    png_bytes = encode(Image.new("RGB", (4, 4), (1, 2, 3)), "PNG")
    assert tuple(decode_image(png_bytes, size=4)[0, 0]) == (1, 2, 3)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def hostile_files() -> dict[str, tuple[bytes, str]]:
    good_png = encode(Image.new("RGB", (32, 32), (9, 9, 9)), "PNG")
    good_jpeg = encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    # A PNG whose header claims 60000x60000 RGB (10.8 G pixels) with a tiny compressed body.
    header_bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
    header_bomb += png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + png_chunk(b"IEND", b"")
    return {
        "empty": (b"", "empty file"),
        "truncated png": (good_png[: len(good_png) // 2], "truncated or corrupt"),
        "truncated jpeg": (good_jpeg[: len(good_jpeg) // 3], "truncated or corrupt"),
        "text": (b"patient list, do not share\n" * 10, "not a recognised image"),
        "gif": (encode(Image.new("P", (4, 4)), "GIF"), "unsupported format GIF"),
        "header bomb": (header_bomb, "decompression bomb"),
    }


@pytest.mark.parametrize("name", list(hostile_files()))
def test_hostile_input_is_rejected_with_reason(name):
    data, reason = hostile_files()[name]
    with pytest.raises(ImageRejected) as info:
        decode_image(data, size=64)
    assert reason in info.value.reason


def test_pixel_limit_rejects_large_image_before_decoding():
    data = encode(Image.new("L", (2000, 1000), 0), "PNG")
    with pytest.raises(ImageRejected, match="decompression bomb: 2000x1000"):
        decode_image(data, size=64, limits=DecodeLimits(max_pixels=1_000_000))


def test_file_size_limit():
    data = encode(Image.new("RGB", (16, 16)), "BMP")
    with pytest.raises(ImageRejected, match="above the limit"):
        decode_image(data, size=64, limits=DecodeLimits(max_file_bytes=100))


@pytest.mark.parametrize(
    "value, expected",
    [
        (65535, 255),  # 16-bit data held in 32-bit mode "I" (as some PNG/TIFF writers do): scaled from 16 bits
        (32768, 128),
        (2**31 - 1, 255),  # true 32-bit (signed) range: scaled from 2**31 - 1
        (2**30, 128),
    ],
)
def test_thirty_two_bit_integer_mode_is_scaled_by_its_range(value, expected):
    image = Image.fromarray(np.full((4, 4), value, dtype=np.int32))
    assert image.mode == "I"
    out = decode_image(encode(image, "TIFF"), size=4)
    assert tuple(out[0, 0]) == (expected,) * 3
