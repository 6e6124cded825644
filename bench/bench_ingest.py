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
