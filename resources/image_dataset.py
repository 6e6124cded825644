"""The ``image_dataset`` resource: which folder each registered dataset reads, and how."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from bio_assets.core.data.demo_data import generate_demo_dataset
from bio_assets.core.data.fingerprint import DigestCache, dataset_fingerprints
from bio_assets.core.data.imaging import ACCEPTED_FORMATS, DecodeLimits
from bio_assets.core.data.ingest import DatasetLayout
from bio_assets.core.data.twins import CrossClassTwins, find_cross_class_twins
from bio_assets.core.registry import DatasetEntry, find_entry, load_registry
from resources.paths import data_home, registry_path


class ImageDatasetResource(dg.ConfigurableResource):
    """Dataset registry, the embedded demo dataset, image size and decoding limits."""

    registry_file: str = Field(default_factory=lambda: str(registry_path()), description="dataset registry YAML")
    demo_root: str = Field(
        default_factory=lambda: str(data_home() / "datasets" / "demo"),
        description="where the demo dataset is generated",
    )
    demo_images_per_class: int = 60
    demo_seed: int = 0
    image_size: int = Field(default=64, description="images are resized to image_size x image_size (Lanczos)")
    accepted_formats: list[str] = Field(
        default_factory=lambda: list(ACCEPTED_FORMATS),
        description=f"Pillow formats (detected from content) that ingestion accepts; a subset of {ACCEPTED_FORMATS}",
    )
    max_file_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 40_000_000

    def entries(self) -> list[DatasetEntry]:
        return load_registry(Path(self.registry_file))

    def entry(self, dataset: str) -> DatasetEntry:
        return find_entry(self.entries(), dataset)

    def layout(self, dataset: str) -> DatasetLayout:
        """The dataset's folder layout; the demo dataset is generated on first use."""
        entry = self.entry(dataset)
        if entry.is_builtin_demo:
            generate_demo_dataset(Path(self.demo_root), self.demo_images_per_class, self.image_size, self.demo_seed)
        return entry.layout(Path(self.demo_root))

    def fingerprints(self, dataset: str, *, deadline: float | None = None) -> dict[str, str]:
        """Class name -> content fingerprint of each class folder as it is now. Digests are cached
        by file size, mtime and inode, so only changed files are read. ``deadline``
        (``time.monotonic()``): the classes finished by then; the next call goes on from the cache."""
        layout = self.layout(dataset)
        cache = DigestCache(data_home() / "fingerprints" / f"{dataset}.json", max_file_bytes=self.max_file_bytes)
        try:
            return dataset_fingerprints(
                layout.class_folders(), layout.file_pattern, layout.root, max_file_bytes=self.max_file_bytes,
                cache=cache, deadline=deadline,
            )  # fmt: skip
        finally:
            cache.save()

    def limits(self) -> DecodeLimits:
        return DecodeLimits(max_file_bytes=self.max_file_bytes, max_pixels=self.max_pixels)

    def formats(self) -> tuple[str, ...]:
        unknown = set(self.accepted_formats) - set(ACCEPTED_FORMATS)
        if unknown:
            raise ValueError(f"accepted_formats {sorted(unknown)} not supported; choose from {ACCEPTED_FORMATS}")
        if not self.accepted_formats:
            raise ValueError(f"accepted_formats is empty; choose from {ACCEPTED_FORMATS}")
        return tuple(self.accepted_formats)

    def cross_class_twins(self, dataset: str) -> CrossClassTwins:
        """Pictures filed under two or more of the dataset's classes (pixel digests cached under the data home)."""
        return find_cross_class_twins(
            self.layout(dataset),
            limits=self.limits(),
            formats=self.formats(),
            cache_path=data_home() / "cache" / "pixel_digests" / f"{dataset}.json",
        )
