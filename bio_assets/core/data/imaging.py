"""Decoding any accepted image file into a validated, resized 8-bit RGB array.

Resampling: every image is resized to ``size x size`` with Pillow's Lanczos filter
(antialiased when shrinking), with ``reducing_gap=3``: large photos are first reduced by
an integer box filter to at least 3x the target, which Pillow documents as visually
indistinguishable and which is exact for reductions of 3x or less. The aspect ratio is
not kept, as in the source method, which resized whole photographs and cell crops to 64x64.
A JPEG is decoded at a reduced scale (libjpeg's DCT scaling, Pillow's ``draft``: 1/2, 1/4
or 1/8) that still leaves at least 2x the target size (``JPEG_DRAFT_GAP``), so a 1024x1024
photo is decoded at 128x128 before the Lanczos resize to 64; the result stays within a mean absolute difference
of ``JPEG_DRAFT_TOLERANCE`` of the full decode (``tests/test_imaging.py`` measures it).

Every failure of the decoder, whatever Pillow raises, is an ``ImageRejected`` with the
reason: one hostile file never fails a whole class. File sizes are checked with ``stat``
before any byte is read (``read_image_file``).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format names we accept, detected from the file content, never the extension.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "TIFF")
RESAMPLING = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0
# A JPEG is decoded at the smallest DCT scale that keeps 2x the target size: at 1/8 libjpeg keeps
# each 8x8 block's mean (an exact box filter), and the Lanczos resize then halves it. 1024 -> 64 px:
# 1.7 ms per 164 KB tile against 2.3 ms at 3x (1/4) and 4.4 ms for the full decode (bench).
JPEG_DRAFT_GAP = 2.0
JPEG_DRAFT_TOLERANCE = 1.0  # mean absolute difference (of 255) from the full decode, at 64 px


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds that protect ingestion from hostile or broken files."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 40_000_000  # a 3264x2448 photo (the source's camera) is 8 Mpx

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError(f"DecodeLimits must be positive, got {self}")


class ImageRejected(ValueError):
    """A file that cannot become a training image; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_image_file(path: Path, limits: DecodeLimits = DecodeLimits()) -> bytes:
    """The bytes of an image file, or ``ImageRejected`` when it is empty or larger than the limit.

    The size comes from ``stat`` before anything is read, and the read stops one byte past the
    limit, so a huge (or sparse, or growing) file is never read into memory.
    """
    size = os.stat(path).st_size
    if size > limits.max_file_bytes:
        raise ImageRejected(f"file is {size} bytes, above the limit of {limits.max_file_bytes}")
    with open(path, "rb") as handle:
        data = handle.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise ImageRejected(f"file grew past the limit of {limits.max_file_bytes} bytes while being read")
    return data


def decode_image(
    data: bytes,
    size: int,
    limits: DecodeLimits = DecodeLimits(),
    formats: tuple[str, ...] = ACCEPTED_FORMATS,
    *,
    jpeg_draft: bool = True,
) -> np.ndarray:
    """Decode file bytes to a uint8 ``(size, size, 3)`` RGB array or raise ``ImageRejected``.

    ``jpeg_draft``: decode a large JPEG at a reduced DCT scale first (see the module docstring).
    """
    if size <= 0:
        raise ValueError(f"image size must be positive, got {size}")
    rgb = decode_rgb(data, limits, formats, draft_size=size * JPEG_DRAFT_GAP if jpeg_draft else None)
    if rgb.size != (size, size):
        rgb = _guarded(lambda: rgb.resize((size, size), RESAMPLING, reducing_gap=REDUCING_GAP))
    return np.asarray(rgb, dtype=np.uint8).copy()


def pixel_digest(
    data: bytes, limits: DecodeLimits = DecodeLimits(), formats: tuple[str, ...] = ACCEPTED_FORMATS
) -> str:
    """SHA-256 of the full-resolution RGB pixels (and their size) after EXIF orientation: equal
    for the same picture saved losslessly in another format; ``ImageRejected`` as ``decode_image``."""
    rgb = decode_rgb(data, limits, formats)
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}\0".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def decode_rgb(
    data: bytes,
    limits: DecodeLimits = DecodeLimits(),
    formats: tuple[str, ...] = ACCEPTED_FORMATS,
    *,
    draft_size: float | None = None,
) -> Image.Image:
    """Validated, EXIF-oriented 8-bit RGB image; a JPEG at least ``draft_size`` square is decoded
    at the smallest DCT scale that keeps both sides at or above it."""
    if len(data) == 0:
        raise ImageRejected("empty file (0 bytes)")
    if len(data) > limits.max_file_bytes:
        raise ImageRejected(f"file is {len(data)} bytes, above the limit of {limits.max_file_bytes}")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both cases
        # ourselves against our own limit instead of changing Pillow's global setting.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _guarded(lambda: Image.open(io.BytesIO(data)), header=True)
        if image.format not in formats:
            raise ImageRejected(f"unsupported format {image.format} (accepted: {', '.join(formats)})")
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageRejected(
                f"decompression bomb: {width}x{height} = {width * height} pixels, "
                f"above the limit of {limits.max_pixels}"
            )
        if draft_size is not None and image.format == "JPEG" and min(width, height) >= 2 * draft_size:
            side = int(np.ceil(draft_size))
            _guarded(lambda: image.draft(None, (side, side)))
        return _guarded(lambda: to_rgb(ImageOps.exif_transpose(_loaded(image))))


def _loaded(image: Image.Image) -> Image.Image:
    image.load()
    return image


def _guarded(step, header: bool = False):
    """Run one decoder step; any exception it raises becomes ``ImageRejected`` with its reason.

    Pillow's plugins raise many types on hostile input (``ValueError`` for a text chunk that
    inflates past its limit, ``SyntaxError``, ``struct.error``, ``IndexError``, ``OSError``, ...),
    so the whole decoder is guarded, not a list of types that fuzzing keeps extending.
    """
    try:
        return step()
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not a recognised image file") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise ImageRejected(f"decompression bomb: {err}") from None
    except Exception as err:  # noqa: BLE001 - see the docstring
        what = "unreadable image header" if header else "truncated or corrupt image data"
        raise ImageRejected(f"{what}: {type(err).__name__}: {err}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB without clipping high bit depths.

    - palette and alpha modes are composited on white (transparent = background);
    - 16/32-bit integer modes are scaled from their bit depth to 0..255, never clipped;
    - float mode: values in [0, 1] are scaled by 255, others by their maximum;
    - grayscale is replicated to three channels; CMYK, YCbCr, LAB, HSV use Pillow's maps.
    """
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image, dtype=np.float64)  # (H, W)
        # Mode "I" is signed 32-bit: data that fits 16 bits is scaled as 16-bit, the rest from 2**31 - 1.
        full_scale = 65535.0 if mode.startswith("I;16") or values.max(initial=0) <= 65535 else 2**31 - 1
        return _gray_to_rgb(np.clip(values, 0, None) * (255.0 / full_scale))
    if mode == "F":
        with np.errstate(invalid="ignore"):  # NaNs (a corrupt or odd TIFF) are zeroed just below
            values = np.asarray(image, dtype=np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        peak = values.max(initial=0.0)
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        return _gray_to_rgb(np.clip(values, 0, None) * scale)
    return image.convert("RGB")


def _gray_to_rgb(values: np.ndarray) -> Image.Image:
    gray = np.rint(values).astype(np.uint8)  # (H, W)
    return Image.fromarray(np.stack([gray, gray, gray], axis=-1))
