"""Candidate training: our trainer against the best hand-written loop, achieved GFLOP/s against
the measured matmul peak, two trainings at once against one after the other, peak memory at
paper settings, and the paper CNN search's estimated wall time on this machine.

Same network (the source's best cell ``3501-110-44-1`` in ``5-[1]``, C=32), same uint8
tensors, same batches and optimizer, in the same run."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.demo_data import demo_classification_data
from bench.results import BenchResult
from bio_assets.core.cnn.candidates import build_seeded
from bio_assets.core.cnn.genotypes import MIN_NODES
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.spaces import cell_space, macro_space
from bio_assets.core.cnn.training import LabelledImages, Precision, TrainParams, evaluate_classifier, train_classifier
from bio_assets.core.hardware import precision_for
from bio_assets.core.search.evolution import EvolutionParams, run_search

SPEC = NetworkSpec("3501-110-44-1", "5-[1]", channels=32, num_classes=5)
EPOCHS, BATCH = 2, 64


def hand_loop(data, device: torch.device, precision: Precision, *, epochs: int, batch_size: int) -> float:
    """The best loop one writes by hand: channels-last, autocast where the device has fast
    low-precision units (bf16 CPU, fp16 + GradScaler CUDA), Adam 1e-3; images/s."""
    images, labels = data
    model = build_seeded(SPEC, 0).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dtype = precision.autocast_dtype
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    generator = torch.Generator().manual_seed(0)
    images, labels = images.to(device), labels.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            x = (images[rows].permute(0, 3, 1, 2).float() / 127.5 - 1.0).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), labels[rows])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(labels) / (time.perf_counter() - started)


def training_flops_per_image(batch: int = 16) -> float:
    """Forward + backward FLOPs of one training image, counted by torch's FlopCounterMode."""
    model = build_seeded(SPEC, 0)
    x = torch.randn(batch, 3, 64, 64)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(batch, dtype=torch.long)).backward()
    return counter.get_total_flops() / batch


def _forward_backward(layer: torch.nn.Module, x: torch.Tensor, device: torch.device, dtype) -> None:
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        out = layer(x)
    out.backward(torch.ones_like(out))


def convolutions_alone(device: torch.device, precision: Precision, batch: int = BATCH) -> tuple[float, float]:
    """(GFLOP/s, seconds per image) of the candidate's convolutions alone, forward and backward, each
    timed on its own input shape in ``precision``: what the training could reach if every other
    operator (pooling, BatchNorm, additions, the optimizer) took no time at all."""
    model = build_seeded(SPEC, 0).to(device)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    shapes: dict[torch.nn.Conv2d, torch.Size] = {}
    # A hook that returned the shape would replace the layer's output: record it and return None.
    hooks = [c.register_forward_hook(lambda m, args, out: shapes.update({m: args[0].shape})) for c in convolutions]
    with torch.no_grad():
        model(torch.zeros(batch, 3, 64, 64, device=device))
    for hook in hooks:
        hook.remove()
    total_flops, total_seconds = 0.0, 0.0
    dtype = precision.autocast_dtype
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    memory = torch.channels_last if precision.channels_last else torch.contiguous_format
    for conv, shape in shapes.items():
        # The stem's input is the image, whose gradient training never computes.
        x = torch.randn(shape, device=device).contiguous(memory_format=memory).requires_grad_(conv.in_channels != 3)
        step = functools.partial(_forward_backward, conv.to(memory_format=memory), x, device, dtype)
        with FlopCounterMode(display=False) as counter:
            step()
        for _ in range(3):
            step()  # oneDNN primitive caches
        synchronize()
        started, repeats = time.perf_counter(), 10
        for _ in range(repeats):
            step()
        synchronize()
        total_seconds += (time.perf_counter() - started) / repeats
        total_flops += counter.get_total_flops()
    return total_flops / total_seconds / 1e9, total_seconds / batch


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of a square matmul in ``dtype`` on ``device``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def hand_loop_in_own_process(device: torch.device) -> float:
    """The hand loop's images/s (after a warm-up epoch) in a new Python process."""
    command = [sys.executable, "-m", "bench.bench_training", "--hand-loop", "--device", str(device)]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800).stdout
    return float(json.loads(output.strip().splitlines()[-1])["images_per_second"])


def ours_rate(data, device: torch.device, precision: Precision, epochs: int = EPOCHS) -> float:
    report = train_classifier(
        build_seeded(SPEC, 0), data.train, TrainParams(epochs=epochs, batch_size=BATCH), device, precision=precision
    )
    return report.images_per_second


def candidate_training(device: torch.device) -> list[BenchResult]:
    data = demo_classification_data()
    precision = precision_for(device, amp=True)
    # Each after a warm-up epoch (oneDNN / cuDNN primitive caches), the best of two, interleaved.
    ours_rate(data, device, precision, epochs=1)
    ours, reference = [], []
    for _ in range(2):
        reference.append(hand_loop_in_own_process(device))
        ours.append(ours_rate(data, device, precision))
    ours, reference = max(ours), max(reference)
    flops = training_flops_per_image()
    peak_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    side = 8192 if device.type == "cuda" else 2048  # a GPU reaches its peak only on large tiles
    peak = matmul_peak(device, peak_dtype, size=side)
    achieved = ours * flops / 1e9
    conv_gflops, conv_seconds = convolutions_alone(device, precision)
    bound = flops / conv_seconds / 1e9 / peak
    autocast = str(precision.autocast_dtype).removeprefix("torch.") if precision.autocast_dtype else "fp32"
    shape = f"{SPEC.cell} in {SPEC.macro}, C={SPEC.channels}, {len(data.train.labels)} images, batch {BATCH}"
    results = [
        BenchResult.rate(
            "candidate_training", ours, reference, "images/s",
            f"{shape}; ours {autocast} channels-last fused Adam; hand loop channels-last {autocast}, Adam, in a "
            "process of its own (nothing our trainer sets up for its process, such as malloc's thresholds, reaches it)",
        ),
        BenchResult.rate(
            "candidate_training_peak_fraction", achieved, peak, "GFLOP/s",
            f"{flops / 1e9:.3f} GFLOP per training image (FlopCounterMode) x ours; peak: {side}^3 "
            f"{str(peak_dtype).removeprefix('torch.')} matmul; the convolutions alone (forward + backward, each on "
            f"its own shape) reach {conv_gflops:.0f} GFLOP/s: if every other operator took no time, training "
            f"would run at {1 / conv_seconds:.0f} images/s, a fraction of {bound:.3f}",
        ),
    ]  # fmt: skip
    if precision.autocast_dtype is not None:
        fp32, fast = accuracy_parity(data, device, precision)
        results.append(
            BenchResult(
                "accuracy_parity", fast, fp32, "val accuracy", fast - fp32 + 1.0,
                f"6 epochs, same seed and batches: {autocast} {fast:.4f} against fp32 {fp32:.4f} (ratio: 1 + diff)",
            )
        )  # fmt: skip
    return results


def accuracy_parity(data, device: torch.device, precision: Precision, epochs: int = 6) -> tuple[float, float]:
    """Validation accuracy after the same training in fp32 and in ``precision``."""
    scores = []
    for chosen in (Precision(channels_last=precision.channels_last), precision):
        model = build_seeded(SPEC, 0)
        train_classifier(model, data.train, TrainParams(epochs=epochs, seed=0), device, precision=chosen)
        scores.append(evaluate_classifier(model, data.val, len(data.class_names), device, precision=chosen)["accuracy"])
    return scores[0], scores[1]


def train_in_subprocess(*arguments: str) -> subprocess.Popen:
    """As the service starts a run: a process of its own, with OpenMP's default wait policy."""
    command = [sys.executable, "-m", "bench.train_once", *arguments]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> dict:
    output, _ = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise RuntimeError(f"bench.train_once exited with {process.returncode}")
    return json.loads(output.strip().splitlines()[-1])


def concurrent_runs() -> BenchResult:
    """Two candidate trainings (two processes, as two Dagster runs) at once, against the same two
    one after the other, each process with the threads the compute resource gives a run."""
    arguments = ("--images", "640", "--epochs", "1")
    finished(train_in_subprocess(*arguments, "--images", "64"))  # warm the file cache for imports
    started = time.perf_counter()
    sequential = [finished(train_in_subprocess(*arguments)) for _ in range(2)]
    one_after_other = time.perf_counter() - started
    started = time.perf_counter()
    pair = [train_in_subprocess(*arguments) for _ in range(2)]
    together = [finished(p) for p in pair]
    at_once = time.perf_counter() - started
    threads = together[0]["threads"]
    return BenchResult.duration(
        "concurrent_runs", at_once, one_after_other, "s wall",
        f"2 trainings of 640 images, 1 epoch, {threads} threads per process; training seconds at once "
        f"{[round(t['seconds'], 1) for t in together]}, alone {[round(t['seconds'], 1) for t in sequential]}",
    )  # fmt: skip


def paper_candidate_memory() -> dict:
    """Peak RSS of one paper-settings candidate training (64 px, 800 images, batch 64, C=32)."""
    return finished(train_in_subprocess("--images", "800", "--epochs", "1"))


def expected_trainings(space, seeds: int = 3) -> float:
    """Mean trainings after deduplication of a paper-settings aging evolution (fake fitness)."""
    counts = []
    for seed in range(seeds):
        params = EvolutionParams(population_size=100, cycles=30, sample_size=25, mutation_probability=0.05, seed=seed)

        def fitness(code: str) -> dict:
            return {"fitness": int(hashlib.sha256(code.encode()).hexdigest()[:8], 16) / 16**8}

        with ThreadPoolExecutor(1) as executor:
            counts.append(run_search(space, fitness, params, executor).num_trainings)
    return float(np.mean(counts))


def paper_cnn_search(device: torch.device, *, sample: int = 3, epochs: int = 2) -> BenchResult:
    """Estimated wall minutes of both paper CNN search stages: seconds per candidate at paper
    settings (64 px, 10 epochs, 200 images per class, 4 classes), measured on ``sample`` random
    candidates of each stage for ``epochs`` epochs and scaled to 10, times the expected trainings."""
    from bio_assets.core.cnn.candidates import CandidateEvaluator, SearchData

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1000, 64, 64, 3), dtype=torch.uint8, generator=generator)
    labels = torch.arange(1000) % 4
    train, val = LabelledImages(images[:800], labels[:800]), LabelledImages(images[800:], labels[800:])
    data = SearchData(train, val, ("a", "b", "c", "d"), "bench")
    precision = precision_for(device, amp=True)
    rng = np.random.default_rng(0)
    minutes, notes = 0.0, []
    for searching, space, channels in (
        ("cell", cell_space(MIN_NODES, 6, 0.05), 16),
        ("macro", macro_space(0.05), 32),
    ):
        evaluator = CandidateEvaluator(
            data=data, train_params=TrainParams(epochs=epochs), channels=channels, searching=searching,
            fixed_cell="3501-110-44-1" if searching == "macro" else "", fixed_macro="1-[]",
            device=str(device), precision=precision, threads=0,
        )  # fmt: skip
        codes = [space.code(space.random(rng)) for _ in range(sample)]
        seconds = []
        for code in codes:
            started = time.perf_counter()
            evaluator(code)
            seconds.append((time.perf_counter() - started) * 10 / epochs)
        trainings = expected_trainings(space)
        minutes += np.mean(seconds) * trainings / 60
        notes.append(f"{searching}: {np.mean(seconds):.1f} s per candidate x {trainings:.0f} trainings")
    return BenchResult.duration(
        "paper_cnn_search", minutes, 175.0, "minutes",
        f"{'; '.join(notes)} (one candidate at a time, {torch.get_num_threads()} threads); reference 175 min = "
        "1.5x the source's 117 V100 minutes",
    )  # fmt: skip


def results(device: torch.device) -> Iterator[BenchResult]:
    yield from candidate_training(device)
    if device.type == "cpu":
        yield concurrent_runs()
    yield paper_cnn_search(device)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from bench.results import table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hand-loop", action="store_true", help="only the hand loop's images/s, as JSON")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.hand_loop:
        data, precision = demo_classification_data(), precision_for(device, amp=True)
        hand_loop(data.train, device, precision, epochs=1, batch_size=BATCH)  # warm-up
        rate = hand_loop(data.train, device, precision, epochs=EPOCHS, batch_size=BATCH)
        print(json.dumps({"images_per_second": rate}))
        return
    print(table(list(results(device))))


if __name__ == "__main__":
    main()
