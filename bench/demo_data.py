"""The demo dataset, ingested, split and augmented by core functions, for benchmarks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bio_assets.core.cnn.dataset import ClassificationData, assemble
from bio_assets.core.data.augment import AugmentParams, augment_class
from bio_assets.core.data.demo_data import generate_demo_dataset
from bio_assets.core.data.ingest import DatasetLayout, ingest_class
from bio_assets.core.data.splits import SplitParams, split_images
from bio_assets.core.seeding import torch_generator


def demo_classification_data(target_per_class: int = 120, seed: int = 0) -> ClassificationData:
    """The demo dataset drawn with ``seed`` (0: the one ``make demo`` uses; others: new draws)."""
    with tempfile.TemporaryDirectory() as folder:
        root = generate_demo_dataset(Path(folder) / "demo", seed=seed)
        layout = DatasetLayout(root)
        splits = {
            name: split_images(ingest_class(path, name, 64, root).images, SplitParams())
            for name, path in layout.class_folders().items()
        }
    augmented = {
        name: augment_class(s.train, AugmentParams(target_per_class=target_per_class), torch_generator(0))
        for name, s in splits.items()
    }
    return assemble(augmented, splits)
