"""Decoding any accepted image file into a validated, resized 8-bit RGB array.

Resampling: every image is resized to ``size x size`` with Pillow's Lanczos filter
(antialiased when shrinking), with ``reducing_gap=3``: large photos are first reduced by
an integer box filter to at least 3x the target, which Pillow documents as visually
indistinguishable and which is exact for reductions of 3x or less. The aspect ratio is
not kept, as in the source method, which resized whole photographs and cell crops to 64x64.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format names we accept, detected from the file content, never the extension.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "TIFF")
RESAMPLING = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0


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


def decode_image(
    data: bytes,
    size: int,
    limits: DecodeLimits = DecodeLimits(),
    formats: tuple[str, ...] = ACCEPTED_FORMATS,
) -> np.ndarray:
    """Decode file bytes to a uint8 ``(size, size, 3)`` RGB array or raise ``ImageRejected``."""
    if size <= 0:
        raise ValueError(f"image size must be positive, got {size}")
    if len(data) == 0:
        raise ImageRejected("empty file (0 bytes)")
    if len(data) > limits.max_file_bytes:
        raise ImageRejected(f"file is {len(data)} bytes, above the limit of {limits.max_file_bytes}")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both cases
        # ourselves against our own limit instead of changing Pillow's global setting.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
            if isinstance(err, UnidentifiedImageError):
                raise ImageRejected("not a recognised image file") from None
            raise ImageRejected(f"decompression bomb: {err}") from None
        except OSError as err:
            raise ImageRejected(f"unreadable image header: {err}") from None
        if image.format not in formats:
            raise ImageRejected(f"unsupported format {image.format} (accepted: {', '.join(formats)})")
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageRejected(
                f"decompression bomb: {width}x{height} = {width * height} pixels, "
                f"above the limit of {limits.max_pixels}"
            )
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageRejected(f"truncated or corrupt image data: {err}") from None
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), RESAMPLING, reducing_gap=REDUCING_GAP)
    return np.asarray(rgb, dtype=np.uint8).copy()


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
        values = np.asarray(image, dtype=np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        peak = values.max(initial=0.0)
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        return _gray_to_rgb(np.clip(values, 0, None) * scale)
    return image.convert("RGB")


def _gray_to_rgb(values: np.ndarray) -> Image.Image:
    gray = np.rint(values).astype(np.uint8)  # (H, W)
    return Image.fromarray(np.stack([gray, gray, gray], axis=-1))
