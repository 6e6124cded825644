"""Publishing one class of synthetic images: files staged, catalog committed, folder promoted.

The catalog commit is the single point at which a publication becomes current. A writer
killed before it leaves the previous publication (files and rows) untouched; killed after it,
the next ``reconcile`` promotes the complete staged folder. ``on_stage`` lets callers observe
(and tests interrupt) each step: ``staged``, ``committed``, ``promoted``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from bio_assets.core.synthesis.catalog import GanRecord, Publication, class_images, current_publication, publish_class
from bio_assets.core.synthesis.files import FolderDefects, check_class_name, reconcile, verify_folder, write_staging


@dataclass(frozen=True)
class SyntheticStore:
    """The catalog engine and the folder holding ``<dataset>/<class>/`` publications."""

    engine: sa.Engine
    root: Path

    def dataset_root(self, dataset: str) -> Path:
        return Path(self.root) / check_class_name(dataset)

    def class_folder(self, dataset: str, class_name: str) -> Path:
        return self.dataset_root(dataset) / check_class_name(class_name)

    def sync(self, dataset: str, class_name: str) -> dict | None:
        """Reconcile the class folder with the catalog; the current publication row, or None."""
        current = current_publication(self.engine, dataset, class_name)
        reconcile(self.dataset_root(dataset), class_name, current["publication"] if current else None)
        return current

    def publish(
        self,
        gan: GanRecord,
        class_name: str,
        images: np.ndarray,
        seed: int,
        on_stage: Callable[[str], None] | None = None,
    ) -> Publication:
        """Replace ``class_name``'s publication by ``images`` uint8 ``(N, S, S, 3)``."""
        stage = on_stage or (lambda _: None)
        self.sync(gan.dataset, class_name)
        publication_id = uuid.uuid4().hex
        files = write_staging(self.dataset_root(gan.dataset), class_name, publication_id, images)
        stage("staged")
        publication = Publication(gan.dataset, class_name, publication_id, seed, int(images.shape[1]), files)
        publish_class(self.engine, gan, publication)
        stage("committed")
        reconcile(self.dataset_root(gan.dataset), class_name, publication_id)
        stage("promoted")
        return publication

    def expected_md5(self, dataset: str, class_name: str) -> dict[str, str]:
        """``{file name: md5}`` of the class's current catalog rows."""
        return {Path(row["file_path"]).name: row["md5"] for row in class_images(self.engine, dataset, class_name)}

    def verify(self, dataset: str, class_name: str) -> tuple[dict | None, FolderDefects]:
        """(current publication, defects of its folder against the catalog)."""
        current = self.sync(dataset, class_name)
        size = current["image_size"] if current else 0
        return current, verify_folder(
            self.class_folder(dataset, class_name), self.expected_md5(dataset, class_name), size
        )
