"""The IO manager and atomic storage: round trips, refusals, and a writer killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import torch

from bio_assets.core.io.records import ImageSet, ImageSplits
from bio_assets.core.io.storage import ModelWeights, load_record, save_record
from resources.io_manager import AssetFileIOManager

ROOT = Path(__file__).resolve().parents[1]


def image_set(n: int = 3, class_name: str = "Superficial-Intermediate", fill: int = 0) -> ImageSet:
    return ImageSet(
        images=np.full((n, 8, 8, 3), fill, np.uint8),
        file_names=np.array([f"ünïcode 'quoted'; {i}.png" for i in range(n)]),
        sha256=np.array([f"{i:064x}" for i in range(n)]),
        class_name=class_name,
    )


PARTITION = "Ähre Zelle 'quoted'; x"
KEYS = {"splits": dg.AssetKey(["demo", "image_splits"]), "weights": dg.AssetKey(["demo", "classifier"])}


def storage_chain(values: dict):
    """A producer of image splits per partition, a producer of weights, and a consumer of both."""
    partitions = dg.StaticPartitionsDefinition([PARTITION, "Other"])

    @dg.asset(key=KEYS["splits"], partitions_def=partitions)
    def image_splits():
        return values["splits"]

    @dg.asset(key=KEYS["weights"])
    def classifier():
        return values["weights"]

    @dg.asset(
        ins={"splits": dg.AssetIn(KEYS["splits"]), "weights": dg.AssetIn(KEYS["weights"])}, partitions_def=partitions
    )
    def consumer(splits, weights):
        values["loaded"] = (splits, weights)

    return [image_splits, classifier, consumer]


def run(assets, manager, instance, selection=None):
    return dg.materialize(
        assets, instance=instance, resources={"io_manager": manager}, partition_key=PARTITION, selection=selection
    )


def test_io_manager_round_trips_records_and_weights(tmp_path):
    manager = AssetFileIOManager(root=str(tmp_path))
    splits = ImageSplits(image_set(3), image_set(1, fill=1), image_set(2, fill=2), seed=4)
    weights = ModelWeights({"conv.weight": torch.randn(4, 3, 3, 3), "fc.bias": torch.zeros(5)}, {"genotype": "5-[1]"})
    values = {"splits": splits, "weights": weights}
    with dg.instance_for_test() as instance:
        result = run(storage_chain(values), manager, instance)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        f"demo/classifier/value/{result.run_id}.safetensors",
        f"demo/image_splits/%C3%84hre%20Zelle%20%27quoted%27%3B%20x/{result.run_id}.npz",
    ]
    loaded, loaded_weights = values["loaded"]
    assert loaded.seed == 4 and loaded.val.class_name == "Superficial-Intermediate"
    np.testing.assert_array_equal(loaded.test.images, splits.test.images)
    assert loaded.train.file_names.tolist() == splits.train.file_names.tolist()
    assert loaded_weights.spec == weights.spec
    torch.testing.assert_close(loaded_weights.state_dict["conv.weight"], weights.state_dict["conv.weight"])


def test_every_materialization_stays_addressable_by_its_run_and_inputs_read_the_newest(tmp_path):
    manager = AssetFileIOManager(root=str(tmp_path))
    values = {"splits": ImageSplits(image_set(1), image_set(1), image_set(1), seed=1), "weights": None}
    with dg.instance_for_test() as instance:
        assets = storage_chain(values)
        first = run(assets, manager, instance, selection=[KEYS["splits"]]).run_id
        values["splits"] = ImageSplits(image_set(1), image_set(1), image_set(1), seed=2)
        second = run(assets, manager, instance, selection=[KEYS["splits"]]).run_id
        assert manager.load_version(KEYS["splits"], PARTITION, first).seed == 1
        assert manager.load_stored(instance, KEYS["splits"], PARTITION).seed == 2  # the newest
        # Retention: only the newest version is kept when keep_versions is 1.
        trimmed = AssetFileIOManager(root=str(tmp_path), keep_versions=1)
        run(assets, trimmed, instance, selection=[KEYS["splits"]])
        with pytest.raises(FileNotFoundError, match=f"stored by run {first}"):
            trimmed.load_version(KEYS["splits"], PARTITION, first)
        assert second != first


def test_an_fsspec_url_root_works_like_a_folder():
    manager = AssetFileIOManager(root="memory://bio-assets-test/storage")
    weights = ModelWeights({"w": torch.ones(2, 2)}, {"kind": "x"})
    values = {"splits": ImageSplits(image_set(1), image_set(1), image_set(1), seed=3), "weights": weights}
    with dg.instance_for_test() as instance:
        run(storage_chain(values), manager, instance)
        assert manager.load_stored(instance, KEYS["weights"], None).spec == {"kind": "x"}
    assert values["loaded"][0].seed == 3


def test_missing_value_names_the_asset(tmp_path):
    manager = AssetFileIOManager(root=str(tmp_path))
    with dg.instance_for_test() as instance:
        with pytest.raises(FileNotFoundError, match="demo/raw_images partition 'X' has no materialization"):
            manager.load_stored(instance, dg.AssetKey(["demo", "raw_images"]), "X")


def test_pickled_content_and_unknown_types_are_refused(tmp_path):
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, images=np.array([{"a": 1}], dtype=object), __record_type__=np.array("image_set/v1"))
    with pytest.raises(ValueError, match="pickle"):
        load_record(pickled)
    unknown = tmp_path / "unknown.npz"
    np.savez(unknown, __record_type__=np.array("something/v9"))
    with pytest.raises(ValueError, match="unknown record type 'something/v9'"):
        load_record(unknown)
    with pytest.raises(TypeError, match="not a registered record type"):
        save_record(tmp_path / "x.npz", {"not": "a record"})


WRITER = textwrap.dedent(
    """
    import sys, time, numpy as np
    from bio_assets.core.io import atomic
    from bio_assets.core.io.records import ImageSet
    from bio_assets.core.io.storage import save_record

    class SlowFile:
        # Writes the first chunk, announces it, then stalls: the parent kills us mid-write.
        def __init__(self, handle):
            self.handle = handle
        def write(self, data):
            self.handle.write(bytes(data))
            self.handle.flush()
            print("writing", flush=True)
            time.sleep(60)
        def __getattr__(self, name):
            return getattr(self.handle, name)

    real_write = atomic.atomic_write
    atomic.atomic_write = lambda path, write: real_write(path, lambda handle: write(SlowFile(handle)))
    import bio_assets.core.io.storage as storage
    storage.atomic_write = atomic.atomic_write
    n = 64
    record = ImageSet(np.full((n, 64, 64, 3), 9, np.uint8), np.array(["new"] * n), np.array(["h"] * n), "C")
    save_record(sys.argv[1], record)
    """
)


def test_write_killed_half_way_leaves_previous_value_readable(tmp_path):
    target = tmp_path / "value.npz"
    save_record(target, image_set(2, fill=7))
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        temporaries = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
        assert temporaries and temporaries[0].stat().st_size > 0  # a partial file really exists
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    survivor = load_record(target)
    assert survivor.file_names.tolist() == image_set(2).file_names.tolist()
    assert (survivor.images == 7).all()


def test_failed_write_removes_its_temporary_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "value.npz"
    save_record(target, image_set(2, fill=3))

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_record(target, image_set(5, fill=4))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["value.npz"]
    assert len(load_record(target)) == 2
