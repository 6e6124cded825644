"""A deterministic procedural generator of Pap-smear-like single-cell images.

Five classes named as SIPaKMeD. Cells are painted in optical-density space (Beer-Lambert:
``pixel = background * exp(-sum of densities)``), so overlapping cells darken as stained
cells do on a slide. Classes differ in kind, as in cytology, and overlap in every single
feature: cell size, nucleus size and N/C ratio, outline irregularity, perinuclear halo
(koilocytes), orange keratinized cytoplasm (dyskeratotic cells), chromatin texture and
neighbour density; every image gets its own stain shift, blur and noise.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

DEMO_CLASSES: tuple[str, ...] = ("Dyskeratotic", "Koilocytotic", "Metaplastic", "Parabasal", "Superficial-Intermediate")
GENERATOR_VERSION = 1
MARKER_FILE = ".bio_assets_demo.json"

# Optical densities per RGB channel of the Papanicolaou stain components.
CYAN_CYTOPLASM = np.array([0.55, 0.18, 0.12])  # light green / blue: absorbs red
PINK_CYTOPLASM = np.array([0.10, 0.42, 0.25])  # eosinophilic pink: absorbs green
ORANGE_CYTOPLASM = np.array([0.06, 0.42, 0.85])  # orange G keratin: absorbs blue and green
NUCLEUS = np.array([0.95, 1.05, 0.55])  # haematoxylin: dark blue-purple


@dataclass(frozen=True)
class CellKind:
    """Ranges (low, high) each image draws from; overlapping ranges keep classes non-trivial."""

    cell_radius: tuple[float, float]
    nucleus_ratio: tuple[float, float]  # nucleus radius / cell radius
    irregularity: tuple[float, float]  # outline harmonic amplitude
    cytoplasm_mix: tuple[float, float, float]  # weights of cyan, pink, orange
    cytoplasm_density: tuple[float, float]
    nucleus_density: tuple[float, float]
    chromatin_grain: tuple[float, float]  # amplitude of granular chromatin texture
    halo_probability: float
    binucleate_probability: float
    neighbours: tuple[int, int]
    spikes: tuple[int, int]  # cytoplasmic processes (metaplastic cells)


KINDS: dict[str, CellKind] = {
    "Dyskeratotic": CellKind(
        (9, 15),
        (0.28, 0.45),
        (0.08, 0.22),
        (0.15, 0.25, 0.60),
        (0.7, 1.2),
        (1.2, 1.8),
        (0.05, 0.15),
        0.0,
        0.05,
        (2, 5),
        (0, 0),
    ),
    "Koilocytotic": CellKind(
        (15, 23),
        (0.22, 0.36),
        (0.06, 0.18),
        (0.55, 0.35, 0.10),
        (0.45, 0.8),
        (1.0, 1.5),
        (0.15, 0.35),
        0.9,
        0.25,
        (0, 3),
        (0, 0),
    ),
    "Metaplastic": CellKind(
        (12, 19),
        (0.28, 0.42),
        (0.10, 0.25),
        (0.80, 0.15, 0.05),
        (0.7, 1.1),
        (0.8, 1.2),
        (0.15, 0.30),
        0.05,
        0.02,
        (0, 3),
        (2, 5),
    ),
    "Parabasal": CellKind(
        (9, 14),
        (0.38, 0.55),
        (0.02, 0.08),
        (0.85, 0.12, 0.03),
        (0.7, 1.1),
        (0.8, 1.2),
        (0.10, 0.25),
        0.0,
        0.02,
        (0, 3),
        (0, 0),
    ),
    "Superficial-Intermediate": CellKind(
        (19, 28),
        (0.10, 0.20),
        (0.10, 0.25),
        (0.50, 0.45, 0.05),
        (0.25, 0.5),
        (1.1, 1.7),
        (0.02, 0.10),
        0.05,
        0.0,
        (0, 3),
        (0, 1),
    ),
}


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-scale smooth random field ``(size, size)``."""
    field = gaussian_filter(rng.standard_normal((size, size)), sigma)
    return field / (field.std() + 1e-8)


def _blob(
    size: int, cx: float, cy: float, *, radius: float, irregularity: float, rng: np.random.Generator, spikes: int = 0
) -> np.ndarray:
    """Soft mask ``(size, size)`` in [0, 1] of a closed shape with a wavy (or spiky) outline."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    theta = np.arctan2(dy, dx)
    outline = np.ones_like(theta)
    for harmonic in range(2, 6):
        outline += rng.uniform(0, irregularity) * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
    for _ in range(spikes):
        # A cytoplasmic process: a narrow angular bump of the outline.
        centre = rng.uniform(-np.pi, np.pi)
        width = rng.uniform(0.15, 0.35)
        angle = np.angle(np.exp(1j * (theta - centre)))
        outline += rng.uniform(0.3, 0.6) * np.exp(-0.5 * (angle / width) ** 2)
    distance = np.hypot(dx, dy)
    return np.clip(radius * outline - distance + 0.5, 0.0, 1.0)


def _paint_cell(
    density: np.ndarray, kind: CellKind, cx: float, cy: float, *, rng: np.random.Generator, scale: float = 1.0
) -> None:
    """Add one cell's optical density into ``density`` ``(size, size, 3)`` in place."""
    size = density.shape[0]
    radius = rng.uniform(*kind.cell_radius) * scale
    mix = np.array(kind.cytoplasm_mix) * rng.uniform(0.6, 1.4, size=3)
    colour = (mix / mix.sum()) @ np.stack([CYAN_CYTOPLASM, PINK_CYTOPLASM, ORANGE_CYTOPLASM])
    cytoplasm = _blob(
        size,
        cx,
        cy,
        radius=radius,
        irregularity=rng.uniform(*kind.irregularity),
        rng=rng,
        spikes=rng.integers(kind.spikes[0], kind.spikes[1] + 1),
    )
    texture = 1.0 + 0.12 * _smooth_noise(rng, size, 2.0)
    density += (cytoplasm * texture * rng.uniform(*kind.cytoplasm_density))[..., None] * colour

    nucleus_radius = max(radius * rng.uniform(*kind.nucleus_ratio), 1.5)
    offset = rng.normal(0, radius * 0.12, size=2)
    nuclei = [(cx + offset[0], cy + offset[1])]
    if rng.random() < kind.binucleate_probability:
        shift = nucleus_radius * 1.1
        nuclei = [(cx + offset[0] - shift, cy + offset[1]), (cx + offset[0] + shift, cy + offset[1])]
    if rng.random() < kind.halo_probability:
        # Koilocyte: a clear perinuclear cavity with a condensed cytoplasmic rim.
        halo_radius = nucleus_radius * rng.uniform(2.0, 2.8)
        halo = _blob(size, nuclei[0][0], nuclei[0][1], radius=halo_radius, irregularity=0.12, rng=rng) * cytoplasm
        outer = _blob(size, nuclei[0][0], nuclei[0][1], radius=halo_radius + 1.8, irregularity=0.12, rng=rng)
        rim = np.clip(outer * cytoplasm - halo, 0, 1)
        density -= (halo * rng.uniform(0.75, 0.95))[..., None] * density
        density += (rim * 0.5)[..., None] * colour
    grain = rng.uniform(*kind.chromatin_grain)
    for nx, ny in nuclei:
        nucleus = _blob(size, nx, ny, radius=nucleus_radius, irregularity=0.08, rng=rng)
        chromatin = 1.0 + grain * _smooth_noise(rng, size, 0.7)
        density += (nucleus * chromatin * rng.uniform(*kind.nucleus_density))[..., None] * NUCLEUS


def render_cell_image(class_name: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One uint8 ``(size, size, 3)`` image of a cell of ``class_name`` with neighbours."""
    kind = KINDS[class_name]
    density = np.zeros((size, size, 3))
    for _ in range(rng.integers(kind.neighbours[0], kind.neighbours[1] + 1)):
        # Neighbours sit towards the border so the centred cell stays the subject.
        angle = rng.uniform(0, 2 * np.pi)
        distance = rng.uniform(0.45, 0.75) * size
        neighbour_kind = KINDS[class_name if rng.random() < 0.6 else DEMO_CLASSES[rng.integers(len(DEMO_CLASSES))]]
        _paint_cell(
            density,
            neighbour_kind,
            size / 2 + distance * np.cos(angle),
            size / 2 + distance * np.sin(angle),
            rng=rng,
            scale=rng.uniform(0.7, 1.0),
        )
    centre = size / 2 + rng.normal(0, size * 0.04, size=2)
    _paint_cell(density, kind, centre[0], centre[1], rng=rng, scale=size / 64)

    stain = rng.uniform(0.8, 1.2, size=3)  # per-slide stain intensity differences
    background = np.array([0.93, 0.92, 0.95]) * rng.uniform(0.9, 1.03, size=3)
    image = background * np.exp(-np.clip(density, 0, None) * stain)
    image = gaussian_filter(image, sigma=(rng.uniform(0.3, 1.1), rng.uniform(0.3, 1.1), 0))
    image += rng.normal(0, rng.uniform(0.005, 0.03), size=image.shape)
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def generate_demo_dataset(root: Path, images_per_class: int = 60, size: int = 64, seed: int = 0) -> Path:
    """Write the demo dataset under ``root`` once; later calls with the same settings reuse it.

    Written to a sibling staging folder and renamed into place, so a killed run never
    leaves a half-written dataset behind.
    """
    root = Path(root)
    settings = {"version": GENERATOR_VERSION, "images_per_class": images_per_class, "size": size, "seed": seed}
    marker = root / MARKER_FILE
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    if root.exists():
        raise ValueError(
            f"{root} exists but is not a demo dataset made with {settings}; remove it or choose another folder"
        )
    staging = root.with_name(f".{root.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    for class_index, class_name in enumerate(DEMO_CLASSES):
        folder = staging / class_name
        folder.mkdir(parents=True)
        for i in range(images_per_class):
            rng = np.random.default_rng([seed, class_index, i])
            Image.fromarray(render_cell_image(class_name, rng, size)).save(folder / f"{class_name.lower()}_{i:03d}.png")
    (staging / MARKER_FILE).write_text(json.dumps(settings))
    root.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, root)
    return root
