"""Values that assets produce: plain arrays with a declared layout, stored without pickle.

Every record converts to and from a flat ``dict[str, np.ndarray]`` (saved as ``.npz``)
and is registered under a stable type name; loading refuses unknown type names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

import numpy as np

RECORD_TYPES: dict[str, type[Record]] = {}

R = TypeVar("R", bound="Record")


class Record(Protocol):
    type_name: ClassVar[str]

    def to_arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def from_arrays(cls: type[R], arrays: dict[str, np.ndarray]) -> R: ...


def register_record(cls: type[R]) -> type[R]:
    if cls.type_name in RECORD_TYPES:
        raise ValueError(f"record type {cls.type_name!r} registered twice")
    RECORD_TYPES[cls.type_name] = cls
    return cls


@register_record
@dataclass(frozen=True)
class ImageSet:
    """Images of one class: uint8 ``(N, H, W, 3)``, the source file of each, its SHA-256.

    ``source_index`` maps augmented rows to the original row they were made from
    (``-1`` for originals); ingestion leaves it empty.
    """

    type_name: ClassVar[str] = "image_set/v1"

    images: np.ndarray
    file_names: np.ndarray
    sha256: np.ndarray
    class_name: str
    source_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        for name in ("file_names", "sha256"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")
        if self.source_index is not None and len(self.source_index) != n:
            raise ValueError(f"source_index has {len(self.source_index)} entries for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    def take(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(
            images=self.images[indices],
            file_names=self.file_names[indices],
            sha256=self.sha256[indices],
            class_name=self.class_name,
            source_index=None if self.source_index is None else self.source_index[indices],
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "images": self.images,
            "file_names": np.asarray(self.file_names, dtype=np.str_),
            "sha256": np.asarray(self.sha256, dtype=np.str_),
            "class_name": np.array(self.class_name, dtype=np.str_),
        }
        if self.source_index is not None:
            arrays["source_index"] = np.asarray(self.source_index, dtype=np.int64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ImageSet:
        return cls(
            images=arrays["images"],
            file_names=arrays["file_names"],
            sha256=arrays["sha256"],
            class_name=str(arrays["class_name"]),
            source_index=arrays.get("source_index"),
        )


SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


@register_record
@dataclass(frozen=True)
class ImageSplits:
    """Disjoint train / validation / test image sets of one class, split by source image."""

    type_name: ClassVar[str] = "image_splits/v1"

    train: ImageSet
    val: ImageSet
    test: ImageSet
    seed: int

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"seed": np.array(self.seed, dtype=np.int64)}
        for split in SPLIT_NAMES:
            for key, value in getattr(self, split).to_arrays().items():
                arrays[f"{split}/{key}"] = value
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ImageSplits:
        parts = {}
        for split in SPLIT_NAMES:
            prefix = f"{split}/"
            parts[split] = ImageSet.from_arrays(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
        return cls(seed=int(arrays["seed"]), **parts)
