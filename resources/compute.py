"""The ``compute`` resource: the one place that looks at the hardware."""

from __future__ import annotations

import dagster as dg
import torch
from pydantic import Field


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

    def describe(self) -> dict[str, str | int | bool]:
        """What was used, for asset metadata."""
        return {"device": str(self.torch_device()), "threads": torch.get_num_threads(), "deterministic": self.deterministic, "amp": self.amp}
