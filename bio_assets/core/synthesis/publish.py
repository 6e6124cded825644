"""Publishing one class of synthetic images: files staged, catalog committed, folder promoted.

The catalog commit is the single point at which a publication becomes current. A writer
killed before it leaves the previous publication (files and rows) untouched; killed after it,
the next ``reconcile`` promotes the complete staged folder. ``on_stage`` lets callers observe
(and tests interrupt) each step: ``staged``, ``committed``, ``promoted``.

Concurrency (see ``locking``): a writer stages under its own staging lock, so nobody else
touches its staging folder; it commits and promotes under the class lock, under which every
reader also reconciles and reads. Writers of different classes run in parallel; writers of
one class stage in parallel and commit one after the other (the last commit wins).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from bio_assets.core.data.class_names import check_class_name
from bio_assets.core.io.locks import DEFAULT_TIMEOUT_S
from bio_assets.core.synthesis.catalog import GanRecord, Publication, class_images, current_publication, publish_class
from bio_assets.core.synthesis.files import (
    FolderDefects,
    SyntheticFile,
    load_folder_images,
    reconcile,
    staging_folder,
    verify_folder,
    write_staging,
)
from bio_assets.core.synthesis.locking import PublicationLocks


@dataclass(frozen=True)
class SyntheticStore:
    """The catalog engine and the folder holding ``<dataset>/<class>/`` publications."""

    engine: sa.Engine
    root: Path
    lock_timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def locks(self) -> PublicationLocks:
        return PublicationLocks(self.engine, Path(self.root), timeout=self.lock_timeout_s)

    def dataset_root(self, dataset: str) -> Path:
        return Path(self.root) / check_class_name(dataset)

    def class_folder(self, dataset: str, class_name: str) -> Path:
        return self.dataset_root(dataset) / check_class_name(class_name)

    @contextmanager
    def reading(self, dataset: str, class_names: Iterable[str]) -> Iterator[dict[str, dict | None]]:
        """Hold the class locks of ``class_names``, reconciled: ``{class: current publication row or None}``.

        While the block runs, no publication of these classes changes, so their folders can be read.
        """
        names = sorted(set(class_names))
        with self.locks.classes(dataset, names):
            yield {name: self._sync_locked(dataset, name) for name in names}

    def sync(self, dataset: str, class_name: str) -> dict | None:
        """Reconcile the class folder with the catalog; the current publication row, or None."""
        with self.reading(dataset, [class_name]) as current:
            return current[class_name]

    def _sync_locked(self, dataset: str, class_name: str) -> dict | None:
        current = current_publication(self.engine, dataset, class_name)
        reconcile(
            self.dataset_root(dataset),
            class_name,
            current["publication"] if current else None,
            abandoned=lambda publication: self.locks.abandoned(dataset, class_name, publication),
        )
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
        publication, _ = self.publish_if(gan, class_name, images, seed, approve=None, on_stage=on_stage)
        return publication

    def publish_if(
        self,
        gan: GanRecord,
        class_name: str,
        images: np.ndarray,
        seed: int,
        *,
        approve: Callable[[Path, list[SyntheticFile]], bool] | None,
        on_stage: Callable[[str], None] | None = None,
    ) -> tuple[Publication, bool]:
        """Stage ``images`` uint8 ``(N, S, S, 3)``; make them the class's publication only when
        ``approve(staging folder, files)`` says so (the quality gates). A refused set is removed and
        the previous publication, if any, stays current. Returns (the staged publication, committed)."""
        stage = on_stage or (lambda _: None)
        dataset = gan.dataset
        check_class_name(class_name)
        publication_id = uuid.uuid4().hex
        # A staging folder left by a failure here keeps no lock once this returns, so the next
        # reconcile of the class removes it (or promotes it, had the commit gone through).
        with self.locks.staging(dataset, class_name, publication_id):
            files = write_staging(self.dataset_root(dataset), class_name, publication_id, images)
            stage("staged")
            publication = Publication(dataset, class_name, publication_id, seed, int(images.shape[1]), files)
            folder = staging_folder(self.dataset_root(dataset), class_name, publication_id)
            if approve is not None and not approve(folder, files):
                shutil.rmtree(folder, ignore_errors=True)
                stage("refused")
                return publication, False
            with self.locks.classes(dataset, [class_name]):
                publish_class(self.engine, gan, publication)
                stage("committed")
                self._sync_locked(dataset, class_name)
        stage("promoted")
        return publication, True

    def expected_md5(self, dataset: str, class_name: str) -> dict[str, str]:
        """``{file name: md5}`` of the class's current catalog rows."""
        return {Path(row["file_path"]).name: row["md5"] for row in class_images(self.engine, dataset, class_name)}

    def verify(self, dataset: str, class_name: str) -> tuple[dict | None, FolderDefects]:
        """(current publication, defects of its folder against the catalog)."""
        with self.reading(dataset, [class_name]) as current:
            row = current[class_name]
            size = row["image_size"] if row else 0
            return row, verify_folder(
                self.class_folder(dataset, class_name), self.expected_md5(dataset, class_name), size
            )

    def load_current(self, dataset: str, class_name: str) -> tuple[dict | None, np.ndarray]:
        """(current publication, its images uint8 ``(N, S, S, 3)`` in catalog order), read under the class lock."""
        with self.reading(dataset, [class_name]) as current:
            names = list(self.expected_md5(dataset, class_name))
            return current[class_name], load_folder_images(self.class_folder(dataset, class_name), names)
