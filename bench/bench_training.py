"""Candidate training: our trainer against a plain PyTorch loop, and achieved GFLOP/s against
the machine's measured matmul peak. Same network (the source's best cell in 5-[1], C=32),
same uint8 tensors, same batches, in the same run."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.demo_data import demo_classification_data
from bio_assets.core.cnn.candidates import build_seeded
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import Precision, TrainParams, evaluate_classifier, train_classifier
from resources.compute import ComputeResource

SPEC = NetworkSpec("3501-110-44-1", "5-[1]", channels=32, num_classes=5)


def plain_loop(images: torch.Tensor, labels: torch.Tensor, epochs: int, batch_size: int) -> float:
    """What one would write by hand: float NCHW batches, fp32, Adam 1e-3."""
    model = build_seeded(SPEC, 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            x = images[rows].permute(0, 3, 1, 2).float() / 127.5 - 1.0
            loss = F.cross_entropy(model(x), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epochs * len(labels) / (time.perf_counter() - started)


def training_flops_per_image(batch: int = 16) -> float:
    """Forward + backward FLOPs of one training image, counted by torch's FlopCounterMode."""
    model = build_seeded(SPEC, 0)
    x = torch.randn(batch, 3, 64, 64)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(batch, dtype=torch.long)).backward()
    return counter.get_total_flops() / batch


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of a square matmul in ``dtype``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def accuracy_parity(data, precision: Precision, epochs: int = 6) -> tuple[float, float]:
    """Validation accuracy after the same training in fp32 and in ``precision`` (same seed, same batches)."""
    scores = []
    for chosen in (Precision(), precision):
        model = build_seeded(SPEC, 0)
        train_classifier(model, data.train, TrainParams(epochs=epochs, seed=0), torch.device("cpu"), chosen)
        scores.append(
            evaluate_classifier(model, data.val, len(data.class_names), torch.device("cpu"), chosen)["accuracy"]
        )
    return scores[0], scores[1]


def main() -> None:
    data = demo_classification_data()
    images, labels = data.train
    epochs, batch = 2, 64
    precision = ComputeResource(device="cpu").precision()
    ours = train_classifier(
        build_seeded(SPEC, 0), data.train, TrainParams(epochs=epochs, batch_size=batch), torch.device("cpu"), precision
    ).images_per_second
    fp32 = train_classifier(
        build_seeded(SPEC, 0),
        data.train,
        TrainParams(epochs=epochs, batch_size=batch),
        torch.device("cpu"),
        Precision(),
    ).images_per_second
    reference = plain_loop(images, labels, epochs, batch)
    print(
        f"candidate training, {SPEC.cell} in {SPEC.macro}, C={SPEC.channels}, {len(labels)} images x {epochs} "
        f"epochs, batch {batch}, {torch.get_num_threads()} threads"
    )
    print(f"  ours ({precision}): {ours:7.1f} images/s")
    print(f"  ours, plain fp32 NCHW: {fp32:7.1f} images/s")
    print(f"  hand-written PyTorch loop (fp32): {reference:7.1f} images/s")
    print(f"  ratio ours / hand-written: {ours / reference:.2f}")
    flops = training_flops_per_image()
    dtype = precision.autocast_dtype or torch.float32
    peak = matmul_peak(dtype)
    achieved = ours * flops / 1e9
    print(f"  training FLOPs per image (fwd+bwd): {flops / 1e9:.3f} GFLOP")
    print(
        f"  achieved {achieved:.1f} GFLOP/s; measured {str(dtype).removeprefix('torch.')} matmul peak {peak:.1f} "
        f"GFLOP/s; ratio {achieved / peak:.3f}"
    )
    if precision.autocast_dtype is not None:
        fp32_accuracy, fast_accuracy = accuracy_parity(data, precision)
        print(
            f"  accuracy parity after 6 epochs (validation, {len(data.val.labels)} images): fp32 "
            f"{fp32_accuracy:.4f}, {precision} {fast_accuracy:.4f}"
        )


if __name__ == "__main__":
    main()
