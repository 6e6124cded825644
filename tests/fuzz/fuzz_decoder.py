"""Fuzz target: the image decoder. Any bytes either decode to a uint8 ``(16, 16, 3)`` array or
are rejected with ``ImageRejected``; any other exception is a bug (a class would fail on one file)."""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np

from tests.fuzz.harness import instrumented, main

with instrumented(__name__ == "__main__"):
    from PIL import Image

    from bio_assets.core.data.imaging import DecodeLimits, ImageRejected, decode_image, pixel_digest

# Pillow warns about the corrupt metadata it meets; at thousands of inputs a second that is only noise.
warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
# Small limits keep each input fast; the limits themselves are part of what is fuzzed.
LIMITS = DecodeLimits(max_file_bytes=1 << 20, max_pixels=1 << 20)


def seeds() -> list[bytes]:
    """One small valid file per accepted format and mode family, plus a large JPEG (draft path)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
    files = []
    for image, fmt, options in (
        (rgb, "PNG", {}),
        (rgb.convert("RGBA"), "PNG", {}),
        (rgb.convert("P"), "PNG", {"transparency": 0}),
        (rgb.convert("I;16"), "PNG", {}),
        (rgb, "JPEG", {"quality": 80}),
        (rgb.convert("CMYK"), "JPEG", {}),
        (Image.fromarray(rng.integers(0, 255, (200, 220, 3), dtype=np.uint8)), "JPEG", {"progressive": True}),
        (rgb, "BMP", {}),
        (rgb.convert("1"), "BMP", {}),
        (rgb, "TIFF", {"compression": "tiff_lzw"}),
        (rgb.convert("F"), "TIFF", {}),
    ):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        files.append(buffer.getvalue())
    return files


def one_input(data: bytes) -> None:
    try:
        out = decode_image(data, 16, LIMITS)
    except ImageRejected:
        return
    if out.shape != (16, 16, 3) or out.dtype != np.uint8:
        raise AssertionError(f"decoded to {out.shape} {out.dtype}")
    pixel_digest(data, LIMITS)  # whatever decodes for ingestion also has a twin digest


if __name__ == "__main__":
    sys.exit(main("fuzz_decoder", one_input, seeds()))
