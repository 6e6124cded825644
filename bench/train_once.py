"""One candidate training in its own process: ``python -m bench.train_once [--threads N] ...``.

Prints one JSON line: wall seconds of the training, images/s and the process's peak resident
memory. ``concurrent_runs`` starts two of these at once and one after the other; the memory
bench and its test start one at paper settings.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bench.results import peak_rss_mb
from bio_assets.core.cnn.candidates import build_seeded
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import LabelledImages, TrainParams, train_classifier
from bio_assets.core.hardware import precision_for


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cell", default="3501-110-44-1")
    parser.add_argument("--macro", default="5-[1]")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--images", type=int, default=800, help="training images (paper: 200 per class x 4)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default (every core), as a run has")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, args.size, args.size, 3), dtype=torch.uint8, generator=generator)
    labels = torch.arange(args.images) % 4
    model = build_seeded(NetworkSpec(args.cell, args.macro, channels=args.channels, num_classes=4), 0)
    precision = precision_for(torch.device("cpu"), amp=True)
    started = time.perf_counter()
    report = train_classifier(
        model, LabelledImages(images, labels), TrainParams(epochs=args.epochs, batch_size=args.batch),
        torch.device("cpu"), precision=precision,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    line = {
        "seconds": seconds,
        "images_per_second": report.images_per_second,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
