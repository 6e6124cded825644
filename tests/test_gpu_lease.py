"""GPU pinning without a GPU: with the device count faked, concurrently running steps each lease a GPU
of their own (the ``compute`` resource resolves them to distinct ``cuda:N``), a step that finds every
GPU taken waits and then fails naming the pool setting, a killed holder frees its GPU, physical ids
follow ``CUDA_VISIBLE_DEVICES``, and search pool workers are pinned to the step's leased GPUs only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bio_assets.core.gpu_lease import lease_gpus, visible_gpu_ids
from resources.compute import ComputeResource
from resources.search_executor import SearchExecutorResource


@pytest.fixture
def two_fake_gpus(monkeypatch):
    """torch believes in 2 CUDA devices; nothing initializes CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def compute(tmp_path, **changes) -> ComputeResource:
    return ComputeResource(device="auto", gpu_lease_dir=str(tmp_path / "leases"), gpu_lease_timeout=0.5, **changes)


def test_concurrent_steps_get_distinct_gpus_and_a_third_waits_then_names_the_pool(tmp_path, two_fake_gpus):
    first, second, third = compute(tmp_path), compute(tmp_path), compute(tmp_path)
    assert {str(first.torch_device()), str(second.torch_device())} == {"cuda:0", "cuda:1"}
    assert first.torch_device() == first.torch_device()  # the lease is held, not taken again
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="`gpu` pool limit"):
        third.torch_device()
    assert time.monotonic() - started >= 0.5
    freed = first.torch_device()
    first.teardown_after_execution(None)  # the step ends: its GPU is free again
    assert third.torch_device() == freed
    assert compute(tmp_path, share_gpus=True).torch_device() == torch.device("cuda")  # configured to share


def test_an_explicit_device_leases_nothing(tmp_path, two_fake_gpus):
    holders = [compute(tmp_path), compute(tmp_path)]
    assert {str(h.torch_device()) for h in holders} == {"cuda:0", "cuda:1"}
    pinned = ComputeResource(device="cuda:1", gpu_lease_dir=str(tmp_path / "leases"), gpu_lease_timeout=0.1)
    assert pinned.torch_device() == torch.device("cuda:1") and pinned.gpu_lease() is None


def test_a_killed_holder_frees_its_gpu(tmp_path):
    lease_dir = tmp_path / "leases"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from bio_assets.core.gpu_lease import lease_gpus; "
            f"lease = lease_gpus(1, lease_dir=Path({str(lease_dir)!r}), environment={{}}); "
            "print(lease.indices, flush=True); time.sleep(60)"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "(0,)"
    with pytest.raises(TimeoutError):
        lease_gpus(1, lease_dir=lease_dir, timeout=0.3, poll=0.05, environment={})
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lease_gpus(1, lease_dir=lease_dir, timeout=5, poll=0.05, environment={}).indices == (0,)


def test_physical_ids_follow_cuda_visible_devices(tmp_path):
    assert visible_gpu_ids(2, {"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert visible_gpu_ids(2, {}) == ["0", "1"]
    lease = lease_gpus(2, wanted=2, lease_dir=tmp_path, environment={"CUDA_VISIBLE_DEVICES": "5,7"})
    assert lease.indices == (0, 1) and lease.physical_ids == ("5", "7")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-5.lock", "gpu-7.lock"]
    with pytest.raises(ValueError, match="wants 3 GPU"):
        lease_gpus(2, wanted=3, lease_dir=tmp_path)


def visible_in_worker(_: int) -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def test_search_pool_workers_are_pinned_to_the_steps_leased_gpus(tmp_path):
    executor = SearchExecutorResource(kind="process_pool", workers=2, state_root=str(tmp_path / "search"))
    with executor.open(gpu_ids=("5", "7")) as plan:
        seen = set(plan.executor.map(visible_in_worker, range(8)))
        assert plan.pinned and seen <= {"5", "7"} and seen
    with executor.open(gpu_ids=("5",)) as plan:
        assert not plan.pinned  # one GPU: the workers use the step's own cuda:N
