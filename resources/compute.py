"""The ``compute`` resource: the one place that looks at the hardware."""

from __future__ import annotations

import dagster as dg
import torch
from pydantic import Field

from bio_assets.core.cnn.training import Precision
from bio_assets.core.hardware import precision_for, resolve_device


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
        return precision_for(self.torch_device(), amp=self.amp)

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
