"""Processes for the publication concurrency tests: publishers and readers of one catalog.

``python -m tests.publication_workers publish URL ROOT WORKER SEED ROUNDS CONTROL``
``python -m tests.publication_workers read URL ROOT MODE WORKER CONTROL``

Every process touches ``CONTROL/ready-<worker>`` once imported and connected, waits for
``CONTROL/go`` so that all start at once, and stops when ``CONTROL/stop`` exists. A publisher
writes images whose pixels encode the publication's seed (``worker * 100000 + round``), so a
folder holding a mix of two publications is seen.
Readers check what they read and exit 1 (with the reason on stderr) at the first disagreement.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from bio_assets.core.synthesis.catalog import GanRecord, dataset_classes, make_engine
from bio_assets.core.synthesis.export import export_package
from bio_assets.core.synthesis.files import load_folder_images, md5_hex, read_publication
from bio_assets.core.synthesis.publish import SyntheticStore

DATASET = "demo"
CLASSES = ("cells", "Ähre Zelle", "x-y")
CHECKPOINTS = ("a" * 64, "b" * 64, "c" * 64)
TRAINING = {
    "g_optimizer": "adam",
    "d_optimizer": "adam",
    "loss": "hinge",
    "batch_size": 16,
    "epochs": 1.5,
    "iterations": 300,
    "g_lr": 1e-4,
    "d_lr": 4e-4,
}


def gan_record(checkpoint: str) -> GanRecord:
    return GanRecord(
        DATASET,
        {"kind": "searched_generator", "genotype": "{3, 42-1, [3]}"},
        {"kind": "searched_discriminator", "genotype": "{3, 63-1, [3]}"},
        f"checkpoint {checkpoint[:8]}",
        checkpoint,
        "concurrency test",
        TRAINING,
    )


def encoded_images(value: int, count: int) -> np.ndarray:
    """``count`` distinct 8x8 images whose first two channels spell ``value`` (< 2**24)."""
    images = np.zeros((count, 8, 8, 3), np.uint8)
    images[..., 0] = value >> 16
    images[..., 1] = (value >> 8) & 255
    images[..., 2] = value & 255
    images[:, 0, 0, 0] = np.arange(count, dtype=np.uint8)  # distinct files, distinct MD5s
    return images


def decoded_values(images: np.ndarray) -> set[int]:
    pixels = images[:, 1:, 1:].astype(np.int64)
    return set(np.unique((pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]).tolist())


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.01)


def publish(store: SyntheticStore, worker: int, seed: int, rounds: int, control: Path) -> None:
    rng = np.random.default_rng([seed, worker])
    log = control / f"published-{worker}.tsv"
    _wait_for(control / "go")
    for round_ in range(rounds):
        if (control / "stop").exists():
            return
        class_name = CLASSES[int(rng.integers(len(CLASSES)))]
        # Round 0 of every worker uses one GAN: the first publishes of a fresh catalog race on its row.
        checkpoint = CHECKPOINTS[0 if round_ == 0 else int(rng.integers(len(CHECKPOINTS)))]
        value = worker * 100_000 + round_
        publication = store.publish(gan_record(checkpoint), class_name, encoded_images(value, 3), seed=value)
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{class_name}\t{publication.publication}\t{value}\n")


def check_export(store: SyntheticStore, target: Path) -> None:
    """An exported package agrees with itself: every CSV row's file exists with its MD5 and pixels."""
    summary = export_package(store, DATASET, target)
    rows = list(csv.DictReader(io.StringIO((target / "catalog.csv").read_text(encoding="utf-8"))))
    folders = {p.name for p in target.iterdir() if p.is_dir()}
    if folders != {r["class_name"] for r in rows} or summary.num_images != len(rows):
        raise AssertionError(f"package folders {folders} and catalog.csv rows disagree")
    for row in rows:
        data = (target / row["file_path"]).read_bytes()
        recorded = (target / f"{row['file_path']}.md5").read_text().split()[0]
        if md5_hex(data) != row["md5"] or recorded != row["md5"]:
            raise AssertionError(f"exported {row['file_path']} does not match its MD5")
    for class_name in folders:
        names = sorted(r["file_path"].partition("/")[2] for r in rows if r["class_name"] == class_name)
        seeds = {int(r["seed"]) for r in rows if r["class_name"] == class_name}
        if decoded_values(load_folder_images(target / class_name, names)) != seeds or len(seeds) != 1:
            raise AssertionError(f"exported class {class_name!r} mixes publications: seeds {seeds}")
    shutil.rmtree(target)


def check_verify(store: SyntheticStore) -> None:
    for class_name in dataset_classes(store.engine, DATASET):
        current, defects = store.verify(DATASET, class_name)
        if not defects.ok:
            raise AssertionError(f"verify of {class_name!r} found {defects}")
        folder = store.class_folder(DATASET, class_name)
        if current is not None and read_publication(folder) is None:
            raise AssertionError(f"class {class_name!r} has no manifest after sync")


def read(store: SyntheticStore, mode: str, worker: int, control: Path) -> None:
    _wait_for(control / "go")
    exports = control / f"exports-{worker}"
    exports.mkdir(exist_ok=True)
    count = 0
    while not (control / "stop").exists():
        if mode == "export":
            if dataset_classes(store.engine, DATASET):
                check_export(store, exports / f"package-{uuid.uuid4().hex[:8]}")
        elif mode == "verify":
            check_verify(store)
        else:
            for class_name in CLASSES:
                store.sync(DATASET, class_name)
        count += 1
        time.sleep(0.01)  # readers come and go; a reader in a tight loop would only measure lock fairness
    (control / f"reads-{worker}").write_text(str(count))


def main(argv: list[str]) -> int:
    command, url, root = argv[:3]
    store = SyntheticStore(make_engine(url), Path(root), lock_timeout_s=120.0)
    if command == "publish":
        worker, seed, rounds, control = int(argv[3]), int(argv[4]), int(argv[5]), Path(argv[6])
        (control / f"ready-{worker}").touch()
        publish(store, worker, seed, rounds, control)
    else:
        mode, worker, control = argv[3], int(argv[4]), Path(argv[5])
        (control / f"ready-{worker}").touch()
        try:
            read(store, mode, worker, control)
        except AssertionError as err:
            print(f"reader {mode}: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
