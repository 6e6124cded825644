"""Joining per-class records into labelled in-memory image tensors for training."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from bio_assets.core.cnn.candidates import SearchData
from bio_assets.core.cnn.training import LabelledImages
from bio_assets.core.data.resize import resize_uint8
from bio_assets.core.io.records import ImageSet, ImageSplits


@dataclass(frozen=True)
class ClassificationData:
    """Augmented train images, real validation and real test images, labelled by sorted class name."""

    train: LabelledImages
    val: LabelledImages
    test: LabelledImages
    class_names: tuple[str, ...]
    version: str

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[1])

    def at_size(self, size: int | None) -> ClassificationData:
        """Every split resized once to ``size`` x ``size`` (antialiased when shrinking); ``None`` or 0
        (or the current size) keeps the data as it is. ``version`` names the size."""
        if not size or size == self.image_size:
            return self
        if size < 8:
            raise ValueError(f"classifier input size must be >= 8 pixels, got {size}")

        def resized(split: LabelledImages) -> LabelledImages:
            return LabelledImages(resize_uint8(split.images, size), split.labels)

        return ClassificationData(
            resized(self.train), resized(self.val), resized(self.test), self.class_names, f"{self.version}@{size}px"
        )

    def for_search(self) -> SearchData:
        """Without the test split: the search must never see it."""
        return SearchData(self.train, self.val, self.class_names, self.version)


def _labelled(sets: list[ImageSet]) -> LabelledImages:
    images = np.concatenate([s.images for s in sets])
    labels = np.concatenate([np.full(len(s), index, dtype=np.int64) for index, s in enumerate(sets)])
    return LabelledImages(torch.from_numpy(images), torch.from_numpy(labels))


def assemble(augmented: dict[str, ImageSet], splits: dict[str, ImageSplits]) -> ClassificationData:
    """Classes in sorted order; ``version`` hashes every pixel of train and validation data."""
    if set(augmented) != set(splits):
        raise ValueError(f"augmented classes {sorted(augmented)} differ from split classes {sorted(splits)}")
    if len(augmented) < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {sorted(augmented)}")
    names = tuple(sorted(augmented))
    for name in names:
        if len(splits[name].val) == 0:
            raise ValueError(f"class {name!r} has no validation images; search fitness needs them")
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        digest.update(augmented[name].images.tobytes())
        digest.update(splits[name].val.images.tobytes())
    return ClassificationData(
        train=_labelled([augmented[n] for n in names]),
        val=_labelled([splits[n].val for n in names]),
        test=_labelled([splits[n].test for n in names]),
        class_names=names,
        version=digest.hexdigest()[:16],
    )
