"""Trainings of several processes share the machine's cores (bio_assets.core.cpu_share): each counts the
live registrations, a killed process stops counting, and the training loops compute on their share."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from bio_assets.core import cpu_share
from bio_assets.core.cnn.candidates import build_seeded
from bio_assets.core.cnn.networks import NetworkSpec
from bio_assets.core.cnn.training import LabelledImages, TrainParams, train_classifier
from bio_assets.core.cpu_share import CpuShare, share_folder, sharing_cpu

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def torch_threads_restored():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_training_alone_keeps_its_threads_and_two_take_one_core_each(tmp_path):
    clock = Clock()
    first = CpuShare(tmp_path, own_threads=2, cores=2, clock=clock)
    assert first.trainings() == 1 and first.poll() == 2
    second = CpuShare(tmp_path, own_threads=2, cores=2, clock=clock)
    assert first.trainings() == second.trainings() == 2
    assert first.poll() == 2  # counted less than a second ago: unchanged
    clock.now = 1.0
    assert first.poll() == 1 and torch.get_num_threads() == 1
    second.close()
    clock.now = 2.0
    assert first.trainings() == 1 and first.poll() == 2 and torch.get_num_threads() == 2
    first.close()
    assert list(tmp_path.iterdir()) == []


def test_a_share_never_exceeds_the_threads_a_training_had_nor_drops_below_one(tmp_path):
    shares = [CpuShare(tmp_path, own_threads=1, cores=8) for _ in range(3)]
    assert [s.share() for s in shares] == [1, 1, 1]  # 8 // 3 = 2, but each asked for 1
    crowd = [CpuShare(tmp_path, own_threads=4, cores=2) for _ in range(2)]
    assert crowd[0].share() == 1  # 2 cores // 5 trainings = 0, still one thread
    for share in shares + crowd:
        share.close()


def test_the_registration_of_a_killed_process_stops_counting_and_is_removed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from bio_assets.core.cpu_share import CpuShare; "
            f"CpuShare(Path({str(tmp_path)!r}), own_threads=1, cores=2); print('ready', flush=True); time.sleep(60)"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        mine = CpuShare(tmp_path, own_threads=2, cores=2)
        assert mine.trainings() == 2
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        deadline = time.monotonic() + 10
        while mine.trainings() != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mine.trainings() == 1
        assert [p.name for p in tmp_path.iterdir()] == [mine.path.name]
        mine.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_file_still_joining_is_not_counted_nor_deleted(tmp_path):
    joining = tmp_path / "123-abc.joining"
    joining.write_text("")
    share = CpuShare(tmp_path, own_threads=2, cores=2)
    assert share.trainings() == 1 and joining.exists()
    share.close()


def test_sharing_is_off_when_the_folder_variable_is_empty_and_for_gpu_trainings(tmp_path):
    assert share_folder({}) == cpu_share.DEFAULT_SHARE_DIR
    assert share_folder({cpu_share.SHARE_DIR_VARIABLE: str(tmp_path)}) == tmp_path
    assert share_folder({cpu_share.SHARE_DIR_VARIABLE: ""}) is None
    with sharing_cpu(torch.device("cuda"), folder=tmp_path) as cores:
        assert cores.poll() == torch.get_num_threads()
    assert list(tmp_path.iterdir()) == []


def test_a_nested_training_shares_the_registration_around_it(tmp_path):
    with sharing_cpu(CPU, folder=tmp_path) as outer, sharing_cpu(CPU, folder=tmp_path) as inner:
        assert inner is outer and outer.trainings() == 1
    assert list(tmp_path.iterdir()) == []


def test_classifier_training_computes_on_its_share_while_another_training_runs(tmp_path, monkeypatch):
    """Two trainings on a 2-core machine: one thread each during training, both threads back after."""
    monkeypatch.setenv(cpu_share.SHARE_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setattr(cpu_share, "usable_cores", lambda: 2)
    torch.set_num_threads(2)
    other = CpuShare(tmp_path, own_threads=2, cores=2)
    seen: list[int] = []
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 16, 16, 3), dtype=torch.uint8, generator=generator)
    model = build_seeded(NetworkSpec("3134-225-43-0", "1-[]", channels=8, num_classes=2), 0)
    train_classifier(
        model, LabelledImages(images, torch.arange(16) % 2), TrainParams(epochs=2, batch_size=8), CPU,
        on_epoch=lambda *_: seen.append(torch.get_num_threads()),
    )  # fmt: skip
    assert seen == [1, 1]
    assert torch.get_num_threads() == 2
    assert [p.name for p in tmp_path.iterdir()] == [other.path.name]
    other.close()


def test_a_training_that_cannot_register_trains_alone_with_a_warning(tmp_path):
    not_a_folder = tmp_path / "taken"
    not_a_folder.write_text("a file where the registry should be")
    threads = torch.get_num_threads()
    with pytest.warns(UserWarning, match="without sharing the cores"), sharing_cpu(CPU, folder=not_a_folder) as cores:
        assert cores.poll() == threads


def test_the_registry_folder_is_shared_by_every_user_like_tmp(tmp_path):
    folder = tmp_path / "registry"
    CpuShare(folder, own_threads=1, cores=2).close()
    assert folder.stat().st_mode & 0o7777 == 0o1777
