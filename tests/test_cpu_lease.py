"""CPU leases: a process on every core holds the machine's cores alone and one on fewer threads
shares them with its kind, a waiting process hears why, a killed holder frees the cores, a
process's second lease is its first, and the ``compute`` resource leases on the CPU (reporting it in
its metadata) until its step ends. ``try_acquire`` on a new descriptor stands in for another
process: ``flock`` locks belong to open file descriptions, so they conflict within one process too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bio_assets.core import cpu_lease
from bio_assets.core.cpu_lease import LEASE_FILE, lease_cpu, machine_cores, release_cpu
from bio_assets.core.io.locks import try_acquire
from resources.compute import ComputeResource


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(cpu_lease, "machine_cores", lambda: 4)


def taken_by_someone(lease_dir: Path, *, shared: bool = False) -> bool:
    """Whether another holder blocks an exclusive (or a shared) lock of the lease file right now."""
    fd = try_acquire(lease_dir / LEASE_FILE, shared=shared)
    if fd is None:
        return True
    os.close(fd)
    return False


def test_an_all_core_lease_is_exclusive_and_a_fewer_thread_lease_is_shared(tmp_path, four_cores):
    everything = lease_cpu(4, lease_dir=tmp_path)
    assert everything.exclusive and everything.waited_s < 1
    assert taken_by_someone(tmp_path) and taken_by_someone(tmp_path, shared=True)
    release_cpu(everything)
    assert not taken_by_someone(tmp_path)

    some = lease_cpu(2, lease_dir=tmp_path)
    assert not some.exclusive
    assert taken_by_someone(tmp_path) and not taken_by_someone(tmp_path, shared=True)  # its kind runs beside it
    assert some.describe() == {"cpu_lease": "shared", "cpu_lease_wait_s": round(some.waited_s, 2)}
    release_cpu(some)
    assert not taken_by_someone(tmp_path)
    with pytest.raises(ValueError, match="at least 1 thread"):
        lease_cpu(0, lease_dir=tmp_path)


def test_a_second_lease_of_one_process_is_the_first_and_holds_until_both_are_released(tmp_path, four_cores):
    first = lease_cpu(4, lease_dir=tmp_path)
    assert lease_cpu(1, lease_dir=tmp_path, timeout=0.1) is first  # no wait on itself
    release_cpu(first)
    assert taken_by_someone(tmp_path)
    release_cpu(first)
    assert not taken_by_someone(tmp_path)
    release_cpu(first)  # releasing what is no longer held changes nothing


def hold_in_subprocess(lease_dir: Path, threads: int, cores: int) -> subprocess.Popen:
    script = (
        "import time; from pathlib import Path; from bio_assets.core import cpu_lease; "
        f"cpu_lease.machine_cores = lambda: {cores}; "
        f"lease = cpu_lease.lease_cpu({threads}, lease_dir=Path({str(lease_dir)!r})); "
        "print(lease.exclusive, flush=True); time.sleep(60)"
    )
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_an_all_core_process_waits_for_a_holder_hears_why_and_a_killed_holder_frees_the_cores(tmp_path, four_cores):
    holder = hold_in_subprocess(tmp_path, threads=1, cores=4)
    try:
        assert holder.stdout.readline().strip() == "False"  # a shared holder
        beside = lease_cpu(2, lease_dir=tmp_path, timeout=0.2)  # its kind runs beside it
        assert not beside.exclusive
        release_cpu(beside)
        heard: list[str] = []
        with pytest.raises(TimeoutError, match=f"{LEASE_FILE} stayed held by other processes"):
            lease_cpu(4, lease_dir=tmp_path, timeout=0.3, poll=0.05, on_wait=heard.append)
        assert len(heard) == 1 and "waiting for the cores" in heard[0] and str(tmp_path) in heard[0]
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    lease = lease_cpu(4, lease_dir=tmp_path, timeout=5)
    assert lease.exclusive
    release_cpu(lease)


def test_the_compute_resource_leases_the_cpu_until_its_step_ends(tmp_path):
    compute = ComputeResource(device="cpu", cpu_lease_dir=str(tmp_path))
    assert compute.torch_device() == torch.device("cpu")
    exclusive = torch.get_num_threads() >= machine_cores()
    described = compute.describe()
    assert described["cpu_lease"] == ("exclusive" if exclusive else "shared")
    assert described["cpu_lease_wait_s"] >= 0
    assert compute.cpu_lease() is compute.cpu_lease()
    assert taken_by_someone(tmp_path, shared=True) == exclusive and taken_by_someone(tmp_path)
    compute.teardown_after_execution(None)
    assert not taken_by_someone(tmp_path)
    sharing = ComputeResource(device="cpu", cpu_lease_dir=str(tmp_path), share_cpu=True)
    assert sharing.torch_device() == torch.device("cpu") and sharing.cpu_lease() is None
    assert "cpu_lease" not in sharing.describe() and not taken_by_someone(tmp_path)
