"""What every benchmark returns, the machine it ran on, and the two ways results are shown."""

from __future__ import annotations

import json
import os
import platform
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class BenchResult:
    """One measurement against its reference, taken in the same run on the same data.

    ``ratio`` is oriented so that higher is better for us (ours / reference for rates,
    reference / ours for times); ``note`` says what was measured and how.
    """

    name: str
    ours: float
    reference: float
    unit: str
    ratio: float
    note: str

    @classmethod
    def rate(cls, name: str, ours: float, reference: float, unit: str, note: str) -> BenchResult:
        """A throughput pair (more is better): ratio = ours / reference."""
        return cls(name, ours, reference, unit, ours / reference, note)

    @classmethod
    def duration(cls, name: str, ours: float, reference: float, unit: str, note: str) -> BenchResult:
        """A time pair (less is better): ratio = reference / ours."""
        return cls(name, ours, reference, unit, reference / ours, note)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine() -> dict:
    """The machine the numbers belong to: CPU, cores, bf16 units, accelerator, library versions."""
    flags = cpu_flags()
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "bf16_units": sorted(flags & {"avx512_bf16", "amx_bf16"}),
        "vector_isa": sorted(flags & {"avx2", "avx512f", "amx_tile"}),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(library default)"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process image, in MiB.

    Linux's ``VmHWM`` belongs to the current program only; ``ru_maxrss`` is not used because it
    survives fork and exec, so a program started by a large parent reports the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KiB on Linux, bytes on macOS


def table(results: list[BenchResult]) -> str:
    rows = [f"{'name':34} {'ours':>12} {'reference':>12} {'unit':14} {'ratio':>7}  note"]
    for r in results:
        rows.append(f"{r.name:34} {r.ours:12.4g} {r.reference:12.4g} {r.unit:14} {r.ratio:7.3f}  {r.note}")
    return "\n".join(rows)


def write_json(path: Path, results: list[BenchResult], extra: dict | None = None) -> None:
    """Write the document; ``peak_rss_mb`` entries already in the file (``bench.peak_rss``) are kept."""
    path = Path(path)
    kept = json.loads(path.read_text()).get("peak_rss_mb", {}) if path.exists() else {}
    document = {"machine": machine(), "benchmarks": [asdict(r) for r in results], **(extra or {})}
    document["peak_rss_mb"] = {**kept, **document.get("peak_rss_mb", {})}
    path.write_text(json.dumps(document, indent=2) + "\n")
