"""The ``compute`` resource: the one place that looks at the hardware."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import torch
from pydantic import Field

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


class ComputeResource(dg.ConfigurableResource):
    """Device, CPU threads, determinism and mixed precision for every torch computation."""

    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N | mps")
    threads: int = Field(default=0, description="torch intra-op CPU threads; 0 keeps torch's default")
    deterministic: bool = Field(default=True, description="ask torch for deterministic kernels")
    amp: bool = Field(default=True, description="mixed precision where the device supports it")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.threads:
            torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(self.deterministic, warn_only=True)

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def precision(self) -> Precision:
        """Channels-last everywhere; autocast to float16 on CUDA, bfloat16 on CPUs with bf16 units, when ``amp``."""
        device = self.torch_device()
        if device.type == "cuda":
            return Precision(channels_last=True, autocast_dtype=torch.float16 if self.amp else None)
        if device.type == "cpu":
            return Precision(
                channels_last=True, autocast_dtype=torch.bfloat16 if self.amp and cpu_has_bf16_units() else None
            )
        return Precision()

    def describe(self) -> dict[str, str | int | bool]:
        """What was used, for asset metadata."""
        precision = self.precision()
        return {
            "device": str(self.torch_device()),
            "threads": torch.get_num_threads(),
            "deterministic": self.deterministic,
            "channels_last": precision.channels_last,
            "autocast": str(precision.autocast_dtype).removeprefix("torch.") if precision.autocast_dtype else "off",
        }
