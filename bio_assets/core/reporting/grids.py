"""Sample grids of images as PNG bytes, for asset metadata and reports."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def image_grid_png(images: np.ndarray, columns: int = 8, max_images: int = 32, upscale: int = 2) -> bytes:
    """PNG of up to ``max_images`` uint8 ``(N, H, W, 3)`` images in rows of ``columns``."""
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"expected a non-empty (N, H, W, 3) array, got shape {images.shape}")
    tiles = images[:max_images]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    height, width = tiles.shape[1:3]
    gap = 2
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        canvas[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = tile
    picture = Image.fromarray(canvas)
    if upscale > 1:
        picture = picture.resize((picture.width * upscale, picture.height * upscale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
