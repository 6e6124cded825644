"""The ``compute`` resource: the one place that looks at the hardware."""

from __future__ import annotations

import dagster as dg
import torch
from pydantic import Field, PrivateAttr

from bio_assets.core.cnn.training import Precision
from bio_assets.core.cpu_share import share_folder
from bio_assets.core.gpu_lease import DEFAULT_LEASE_DIR, GpuLease, lease_gpus
from bio_assets.core.hardware import precision_for, resolve_device


class ComputeResource(dg.ConfigurableResource):
    """Device, CPU threads, determinism and mixed precision for every torch computation.

    With ``device`` ``auto`` or ``cuda`` on a machine with GPUs, the step leases ``gpus_per_step``
    GPUs no other step of the machine holds (``bio_assets.core.gpu_lease``) and runs on the first:
    with the ``gpu`` pool limit at the GPU count, each concurrently running step has its own device.
    ``cuda:N`` pins a step to GPU N and leases nothing; ``share_gpus`` turns leasing off."""

    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N | mps")
    threads: int = Field(default=0, description="torch intra-op CPU threads; 0 keeps torch's default")
    deterministic: bool = Field(default=True, description="ask torch for deterministic kernels")
    amp: bool = Field(default=True, description="mixed precision where the device supports it")
    gpus_per_step: int = Field(default=1, description="GPUs one step leases (a search's workers share them)")
    share_gpus: bool = Field(default=False, description="let concurrent steps share GPUs (no leases)")
    gpu_lease_dir: str = Field(
        default=str(DEFAULT_LEASE_DIR), description="a folder local to the machine holding one lock file per GPU"
    )
    gpu_lease_timeout: float = Field(default=600.0, description="seconds a step waits for a free GPU")

    _lease: GpuLease | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.threads:
            torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(self.deterministic, warn_only=True)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def _leases(self, device: torch.device) -> bool:
        return device.type == "cuda" and device.index is None and not self.share_gpus

    def gpu_lease(self) -> GpuLease | None:
        """This step's GPUs (leased on first use), or ``None`` where nothing is leased."""
        if self._lease is None and self._leases(resolve_device(self.device)):
            self._lease = lease_gpus(
                torch.cuda.device_count(), wanted=self.gpus_per_step, lease_dir=self.gpu_lease_dir,
                timeout=self.gpu_lease_timeout,
            )  # fmt: skip
            torch.cuda.set_device(self._lease.indices[0])
        return self._lease

    def torch_device(self) -> torch.device:
        device = resolve_device(self.device)
        lease = self.gpu_lease() if self._leases(device) else None
        return torch.device("cuda", lease.indices[0]) if lease is not None else device

    def precision(self) -> Precision:
        """Channels-last everywhere; autocast to float16 on CUDA, bfloat16 on CPUs with bf16 units, when ``amp``."""
        return precision_for(self.torch_device(), amp=self.amp)

    def describe(self) -> dict[str, str | int | bool]:
        """What was used, for asset metadata."""
        precision = self.precision()
        lease = self._lease
        return {
            "device": str(self.torch_device()),
            "threads": torch.get_num_threads(),
            # Trainings on the CPU take their share of the cores while others train (core.cpu_share).
            "cpu_share": str(share_folder() or "off"),
            "deterministic": self.deterministic,
            "channels_last": precision.channels_last,
            "autocast": str(precision.autocast_dtype).removeprefix("torch.") if precision.autocast_dtype else "off",
            **({"leased_gpus": ",".join(lease.physical_ids)} if lease is not None else {}),
        }
