"""``make gpu-smoke``: the CUDA paths on one GPU, in well under 5 minutes.

fp16-AMP candidate training (GradScaler), GAN training steps with AMP and its scalers,
generation, device pinning against the visible GPU count, then the training and GAN bench
entries on CUDA. Exits 2 where there is no GPU (CI has none; ``tests/test_cuda_smoke.py``
skips there). Prints one line per check and the bench table.
"""

from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from bench.results import machine, table
from bio_assets.core.cnn.candidates import build_seeded
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import LabelledImages, TrainParams, evaluate_classifier, train_classifier
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.gan.training import GanImages, GanTrainParams, train_gan
from bio_assets.core.gpu_lease import lease_gpus, visible_gpu_ids
from bio_assets.core.hardware import auto_layout, gan_precision_for, pin_worker_gpu, precision_for
from bio_assets.core.synthesis.generation import TrainedGenerator, state_sha256, synthesize

CLASSES = ("a", "b", "c", "d")


def images(count: int, size: int, seed: int = 0) -> LabelledImages:
    """Classes told apart by brightness, so a working trainer learns them in two epochs."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % len(CLASSES)
    base = 40 + 55 * labels[:, None, None, None]
    noise = torch.randint(-25, 25, (count, size, size, 3), generator=generator)
    return LabelledImages((base + noise).clamp(0, 255).to(torch.uint8), labels)


def amp_candidate_training(device: torch.device) -> str:
    precision = precision_for(device, amp=True)
    assert precision.autocast_dtype == torch.float16 and precision.channels_last, precision
    model = build_seeded(NetworkSpec("3501-110-44-1", "5-[1]", channels=32, num_classes=len(CLASSES)), 0)
    report = train_classifier(model, images(512, 64), TrainParams(epochs=3, batch_size=64), device, precision=precision)
    scores = evaluate_classifier(model, images(128, 64, seed=1), len(CLASSES), device, precision=precision)
    accuracy = scores["accuracy"]
    assert all(math.isfinite(loss) for loss in report.epoch_losses), report.epoch_losses
    assert next(model.parameters()).device.type == "cuda"
    assert accuracy > 0.5, f"fp16-AMP training did not learn an easy problem: accuracy {accuracy:.3f}"
    return f"fp16-AMP candidate training: {report.images_per_second:.0f} images/s, val accuracy {accuracy:.3f}"


def gan_networks(device: torch.device):
    g = build_seeded_gan(GanNetworkSpec("generator", "{4, 236-42-6, [3, 4]}", 64, 32, len(CLASSES)), 0)
    d = build_seeded_gan(GanNetworkSpec("discriminator", "{4, 235-66-7, [4]}", 32, 32, len(CLASSES)), 1)
    return g.to(device), d.to(device)


def amp_gan_training(device: torch.device) -> tuple[str, torch.nn.Module]:
    precision = gan_precision_for(device, amp=True)
    g, d = gan_networks(device)
    data = images(256, 32)
    report = train_gan(
        g, d, GanImages(data.images, data.labels, len(CLASSES)),
        GanTrainParams(iterations=60, batch_size=32, checkpoint_every=1000), device=device, precision=precision,
    )  # fmt: skip
    assert all(math.isfinite(v) for v in report.final_losses.values()), report.final_losses
    scale = report.final_losses.get("loss_scale_generator")
    return (
        f"GAN training with fp16 AMP + GradScaler: {report.iterations_per_second:.1f} it/s, final losses "
        f"{ {k: round(v, 3) for k, v in report.final_losses.items()} }{'' if scale is None else f', scale {scale}'}",
        report.sampler,
    )


def generation(sampler: torch.nn.Module, device: torch.device) -> str:
    spec = GanNetworkSpec("generator", "{4, 236-42-6, [3, 4]}", 64, 32, len(CLASSES))
    trained = TrainedGenerator(sampler.eval(), spec, CLASSES, state_sha256(sampler.state_dict()))
    started = time.perf_counter()
    made = synthesize(trained, "b", 256, seed=0, device=device)
    again = synthesize(trained, "b", 256, seed=0, device=device)
    assert made.shape == (256, 64, 64, 3) and made.dtype.name == "uint8"
    assert (made == again).all(), "the same seed gave different images on CUDA"
    return f"generation: 2 x 256 images of 64 px in {time.perf_counter() - started:.2f} s, same seed same images"


def visible_gpus(_: int) -> tuple[str, int]:
    return os.environ.get("CUDA_VISIBLE_DEVICES", ""), torch.cuda.device_count()


def device_pinning() -> str:
    """Pool workers pinned by ``pin_worker_gpu`` each see exactly one GPU, k mod count."""
    count = torch.cuda.device_count()
    workers = max(2, count)
    context = get_context("spawn")
    pinning = (context.Value("i", 0), tuple(visible_gpu_ids(count)))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=pin_worker_gpu, initargs=pinning) as pool:
        seen = sorted(set(pool.map(visible_gpus, range(workers * 4))))
    assert all(n == 1 for _, n in seen), seen
    assert {v for v, _ in seen} <= {str(i) for i in range(count)}, seen
    kind, planned = auto_layout(len(os.sched_getaffinity(0)), count)
    lease = lease_gpus(count, timeout=5)
    second = lease_gpus(count, timeout=5) if count > 1 else None
    leased = [lease.indices] + ([second.indices] if second else [])
    for held in (lease, second):
        if held is not None:
            held.release()
    assert len({i for held in leased for i in held}) == len(leased), leased  # two leases, two GPUs
    return (
        f"device pinning: leases {leased}; {count} visible GPU(s); pool workers saw {seen}; "
        f"search layout auto -> {kind} x {planned}"
    )


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu-smoke: no CUDA device here; nothing to check", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    started = time.perf_counter()
    print(f"machine: {machine()}")
    print(amp_candidate_training(device), flush=True)
    line, sampler = amp_gan_training(device)
    print(line, flush=True)
    print(generation(sampler, device), flush=True)
    print(device_pinning(), flush=True)
    from bench import bench_gan, bench_training

    found = bench_training.candidate_training(device) + bench_gan.results(device)
    print(table(found))
    print(f"gpu-smoke passed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
