"""What the hardware offers: devices, bf16 units, the precision to train in, how many
candidates to train at once and on which GPU. Pure torch; the ``compute`` and
``search_executor`` resources read the machine through these functions."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bio_assets.core.cnn.training import Precision


def cpu_has_bf16_units() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(request: str) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into an available ``torch.device`` or raise ``ValueError``."""
    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' requested but Apple MPS is not available here")
        return torch.device("mps")
    if request == "cuda" or request.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {request!r} requested but CUDA is not available here")
        device = torch.device(request)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {request!r} requested but only {torch.cuda.device_count()} CUDA devices exist")
        return device
    raise ValueError(f"unknown device {request!r}; allowed: auto, cpu, cuda, cuda:N, mps")


def precision_for(device: torch.device, *, amp: bool) -> Precision:
    """Channels-last everywhere; autocast to float16 on CUDA, bfloat16 on CPUs with bf16 units, when ``amp``."""
    if device.type == "cuda":
        return Precision(channels_last=True, autocast_dtype=torch.float16 if amp else None)
    if device.type == "cpu":
        return Precision(channels_last=True, autocast_dtype=torch.bfloat16 if amp and cpu_has_bf16_units() else None)
    return Precision()


def gan_precision_for(device: torch.device, *, amp: bool) -> Precision:
    """GAN training: AMP (fp16 + loss scaling) on CUDA; bf16 channels-last on CPUs with bf16 units
    (8-9 against 5-6 it/s in fp32, bench GAN, 2-core EPYC with AVX-512-bf16), its FID trajectory
    within fp32's seed noise (tests/test_gan_precision.py); fp32 NCHW elsewhere (channels-last
    without bf16 gains these small networks nothing)."""
    if device.type == "cpu" and not (amp and cpu_has_bf16_units()):
        return Precision()
    return precision_for(device, amp=amp)


def auto_layout(cores: int, gpus: int) -> tuple[str, int]:
    """(kind, workers) for this machine: one worker per GPU; on CPUs one single-threaded worker per
    core: a search network does not keep several threads fully busy, so single-threaded workers train
    more candidates per hour (bench search_parallel, which also prints this layout's bound: on a 2-core
    Xeon with AMX in bf16 a candidate runs 1.8x faster on 2 threads than on 1, so 2 workers gain 5-10%)."""
    if gpus > 1:
        return "process_pool", gpus
    if gpus == 1 or cores < 2:
        return "in_process", 1
    return "process_pool", cores


def pin_worker_gpu(counter, gpu_ids: tuple[str, ...]) -> None:
    """Pool initializer: worker k sees only GPU ``gpu_ids[k mod len]`` (before CUDA initializes)."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu_ids[index % len(gpu_ids)]
