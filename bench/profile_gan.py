"""``python -m bench.profile_gan [--threads N] [--device cpu|cuda]``: where GAN training spends its
time in fp32 and in the device's low precision (bf16 autocast on CPU, fp16 AMP on CUDA).

Trains the bench's searched G/D (32 px, batch 16) for a few warm-up and ``--steps`` profiled
iterations per precision and prints each precision's rate and torch.profiler's top operators.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from bench.bench_gan import BATCH, networks
from bench.demo_data import demo_classification_data
from bio_assets.core.cnn.training import Precision
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.gan.training import GanImages, GanTrainParams, train_gan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = demo_classification_data()
    images = GanImages(resize_uint8(data.train.images, 32), data.train.labels, len(data.class_names))
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    for name, precision in (
        ("fp32 NCHW", Precision()),
        ("fp32 channels-last", Precision(channels_last=True)),
        (f"{str(low).removeprefix('torch.')} channels-last", Precision(channels_last=True, autocast_dtype=low)),
    ):
        g, d = networks(images.num_classes)
        params = GanTrainParams(iterations=3, batch_size=BATCH, checkpoint_every=1000)
        train_gan(g, d, images, params, device=device, precision=precision)  # warm-up: kernel and primitive caches
        g, d = networks(images.num_classes)
        params = GanTrainParams(iterations=args.steps, batch_size=BATCH, checkpoint_every=1000)
        with profile(activities=activities) as prof:
            started = time.perf_counter()
            report = train_gan(g, d, images, params, device=device, precision=precision)
            seconds = time.perf_counter() - started
        print(
            f"\n=== {name}: {report.iterations_per_second:.2f} it/s ({seconds:.1f} s for {args.steps} steps, "
            f"{torch.get_num_threads()} threads)"
        )
        print(prof.key_averages().table(sort_by=sort, row_limit=args.rows, max_name_column_width=48))


if __name__ == "__main__":
    main()
