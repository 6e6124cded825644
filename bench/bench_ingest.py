"""Ingestion throughput on the demo folder: ours against torchvision ImageFolder + DataLoader.

Both decode and resize the same files to 64x64 RGB uint8 in the same process, one core
each (no worker processes), best of several repeats. Ours additionally hashes every
file (SHA-256) and validates it, which the reference does not.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from bench.results import BenchResult
from bio_assets.core.data.demo_data import generate_demo_dataset
from bio_assets.core.data.imaging import RESAMPLING
from bio_assets.core.data.ingest import DatasetLayout, ingest_class


def ours(layout: DatasetLayout, size: int) -> int:
    count = 0
    for class_name, folder in layout.class_folders().items():
        count += len(ingest_class(folder, class_name, size, layout.root).images)
    return count


def reference(root: Path, size: int) -> int:
    transform = v2.Compose([v2.PILToTensor(), v2.Resize((size, size), antialias=True)])
    folder = datasets.ImageFolder(str(root), transform=transform, loader=lambda p: datasets.folder.pil_loader(p))
    count = 0
    for images, _ in DataLoader(folder, batch_size=64, num_workers=0):
        count += len(images)
    return count


def best_rate(run, repeats: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeats):
        started = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - started)
    return count / best, count


def large_jpeg_folder(root: Path, *, classes: int = 2, per_class: int = 24, side: int = 1024) -> Path:
    """``classes`` folders of ``per_class`` textured ``side``-px JPEGs (quality 90), as a slide scanner's tiles."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            phase = rng.uniform(0, 2 * np.pi, 3)
            waves = [np.sin(xx / (20 + 7 * k + c * 5) + yy / (31 + 3 * i % 11) + phase[k]) for k in range(3)]
            noise = rng.normal(0, 3, (side, side, 3))  # sensor noise; a stained tile is smooth at 1024 px
            pixels = np.clip(np.stack(waves, axis=-1) * 70 + 128 + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"tile_{i:03d}.jpg", quality=90)
    return root


def results(repeats: int = 3) -> list[BenchResult]:
    """``ingestion_large_jpeg``: 1024x1024 JPEGs to 64 px, one core each (no worker processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = large_jpeg_folder(Path(folder) / "tiles")
            layout = DatasetLayout(root)
            mean_kb = sum(p.stat().st_size for p in root.rglob("*.jpg")) / 1024 / len(list(root.rglob("*.jpg")))
            reference(root, 64)  # warm the page cache for both
            ours_rate, ours_count = best_rate(lambda: ours(layout, 64), repeats)
            ref_rate, ref_count = best_rate(lambda: reference(root, 64), repeats)
    finally:
        torch.set_num_threads(threads)
    if ours_count != ref_count:
        raise RuntimeError(f"ours read {ours_count} images, the reference {ref_count}")
    return [
        BenchResult.rate(
            "ingestion_large_jpeg", ours_rate, ref_rate, "images/s",
            f"{ours_count} JPEGs 1024x1024 (mean {mean_kb:.0f} KB) -> 64x64 RGB, best of {repeats}, 1 core each; "
            "ours validates, hashes "
            "(SHA-256) and decodes at a reduced DCT scale (draft) before the antialiased resize",
        )
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images-per-class", type=int, default=60)
    parser.add_argument("--size", type=int, default=64, help="ingested size")
    parser.add_argument(
        "--source-sizes", type=int, nargs="+", default=[64, 256], help="sizes the demo files are written at"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_cases(args)
    finally:
        torch.set_num_threads(threads)  # the other benchmarks in this process use every core


def run_cases(args: argparse.Namespace) -> None:
    for source_size in args.source_sizes:
        with tempfile.TemporaryDirectory() as folder:
            root = generate_demo_dataset(Path(folder) / "demo", args.images_per_class, source_size)
            layout = DatasetLayout(root)
            ours_rate, ours_count = best_rate(lambda layout=layout: ours(layout, args.size), args.repeats)
            ref_rate, ref_count = best_rate(lambda root=root: reference(root, args.size), args.repeats)
        if ours_count != ref_count:
            raise RuntimeError(f"ours read {ours_count} images, the reference {ref_count}")
        print(
            f"ingestion of {ours_count} demo PNGs of {source_size}x{source_size} to {args.size}x{args.size} RGB, "
            f"best of {args.repeats}, 1 thread"
        )
        print(f"  ours (validate + SHA-256 + Pillow {RESAMPLING.name}): {ours_rate:8.1f} images/s")
        print(f"  torchvision ImageFolder + DataLoader (antialiased bilinear): {ref_rate:8.1f} images/s")
        print(f"  ratio ours / reference: {ours_rate / ref_rate:.2f}")


if __name__ == "__main__":
    main()
