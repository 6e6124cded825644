"""The published layout of synthetic images, written so that a class folder always holds one
complete publication.

``<root>/<class>/<class>_00000.png`` with ``<class>_00000.png.md5`` beside each image (the
``md5sum`` line format, so ``md5sum -c *.md5`` verifies a folder) and ``.publication.json``
naming the publication the folder holds. A publication is written into
``<root>/.staging/<quoted class>-<publication>/`` first; the catalog commit decides which
publication is current, and ``reconcile`` makes the class folder match it, so a writer killed
at any point leaves either the previous or the new publication in place, never a mix.
Folders are fsynced after entries are created in them and after renames, so a power cut
cannot lose a promotion the catalog has committed. The locks that keep writers and
readers apart are in ``locking``; ``reconcile`` expects its caller to hold the class lock.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from bio_assets.core.data.class_names import check_class_name
from bio_assets.core.io.atomic import fsync_dir

MANIFEST = ".publication.json"
STAGING = ".staging"
TRASH = ".trash"


@dataclass(frozen=True)
class SyntheticFile:
    file_name: str
    md5: str
    sha256: str
    sample_index: int


def image_file_name(class_name: str, index: int) -> str:
    return f"{check_class_name(class_name)}_{index:05d}.png"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def encode_png(image: np.ndarray) -> bytes:
    """uint8 ``(S, S, 3)`` -> PNG bytes (lossless, no timestamps, so equal pixels give equal bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def staging_folder(root: Path, class_name: str, publication: str) -> Path:
    return Path(root) / STAGING / f"{quote(class_name, safe='')}-{publication}"


def read_publication(folder: Path) -> str | None:
    """The publication id a folder holds, or None when it has no (readable) manifest."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())["publication"]
    except (OSError, ValueError, KeyError):
        return None


def write_staging(
    root: Path, class_name: str, publication: str, images: np.ndarray, first_index: int = 0
) -> list[SyntheticFile]:
    """Write ``images`` uint8 ``(N, S, S, 3)`` as a complete publication in its staging folder."""
    folder = staging_folder(root, check_class_name(class_name), publication)
    if folder.exists():
        shutil.rmtree(folder)
    _make_folder(folder)
    files = write_images(folder, class_name, images, first_index)
    # The manifest goes last: a staging folder without one is incomplete and never promoted.
    _write(
        folder / MANIFEST,
        json.dumps({"publication": publication, "class_name": class_name, "num_images": len(files)}).encode(),
    )
    fsync_dir(folder)
    return files


def _make_folder(folder: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of every folder it creates, so the new entries persist."""
    if folder.is_dir():
        return
    _make_folder(folder.parent)
    folder.mkdir(exist_ok=True)  # another writer may create a shared parent at the same moment
    fsync_dir(folder.parent)


def write_images(folder: Path, class_name: str, images: np.ndarray, first_index: int = 0) -> list[SyntheticFile]:
    """``<class>_<index>.png`` and its ``.md5`` for each uint8 ``(S, S, 3)`` image, fsynced."""
    files = []
    for offset, image in enumerate(images):
        name = image_file_name(class_name, first_index + offset)
        data = encode_png(np.ascontiguousarray(image))
        digest = md5_hex(data)
        _write(folder / name, data)
        _write(folder / f"{name}.md5", f"{digest}  {name}\n".encode())
        files.append(SyntheticFile(name, digest, hashlib.sha256(data).hexdigest(), first_index + offset))
    return files


def reconcile(root: Path, class_name: str, committed: str | None, *, abandoned: Callable[[str], bool]) -> None:
    """Make ``<root>/<class>`` hold the ``committed`` publication and clear leftovers of others.

    Called, under the class lock, before and after every publish and before every read: it
    finishes a promotion the catalog committed but a killed writer did not, and removes the
    staging folders of publications never committed whose writer is gone
    (``abandoned(publication)``); a writer still staging keeps its folder.
    """
    root = Path(root)
    folder = root / check_class_name(class_name)
    staged = _owned(root / STAGING, class_name)
    if committed is not None and read_publication(folder) != committed:
        candidate = staged.pop(committed, None)
        if candidate is None or read_publication(candidate) != committed:
            raise RuntimeError(
                f"catalog says class {class_name!r} holds publication {committed}, but neither {folder} nor its "
                "staging folder has it"
            )
        trash = root / TRASH / f"{quote(class_name, safe='')}-{os.getpid()}"
        if folder.exists():
            _make_folder(trash.parent)
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(folder, trash)
            fsync_dir(trash.parent)
        os.replace(candidate, folder)
        fsync_dir(root)
        fsync_dir(candidate.parent)
    for publication, leftover in staged.items():
        if abandoned(publication):
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in _owned(root / TRASH, class_name).values():
        shutil.rmtree(leftover, ignore_errors=True)


def leftover_publications(root: Path, class_name: str) -> list[str]:
    """Publication ids of the class's staging folders (committed, in progress or abandoned)."""
    return sorted(_owned(Path(root) / STAGING, class_name))


def _owned(parent: Path, class_name: str) -> dict[str, Path]:
    """``{suffix: path}`` of ``<parent>/<quoted class>-<suffix>`` entries; the suffix (a
    publication id or a pid) has no '-', so class ``a`` never claims class ``a-b``'s folders."""
    if not parent.is_dir():
        return {}
    owned = {}
    for path in parent.iterdir():
        stem, _, suffix = path.name.rpartition("-")
        if stem == quote(class_name, safe=""):
            owned[suffix] = path
    return owned


@dataclass(frozen=True)
class FolderDefects:
    """What is wrong with a published class folder compared with its catalog rows."""

    missing: list[str]
    undecodable: list[str]
    wrong_size: list[str]
    md5_mismatch: list[str]  # file bytes differ from the catalog's MD5 or from its .md5 file
    unlisted: list[str]  # images in the folder the catalog does not list

    def counts(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name))
            for name in ("missing", "undecodable", "wrong_size", "md5_mismatch", "unlisted")
        }

    @property
    def ok(self) -> bool:
        return not any(self.counts().values())


def verify_folder(folder: Path, expected_md5: dict[str, str], image_size: int) -> FolderDefects:
    """Check that every catalogued file exists, decodes as an RGB ``image_size`` square PNG and
    matches both its catalog MD5 and its ``.md5`` file, and that no uncatalogued image is present."""
    folder = Path(folder)
    missing, undecodable, wrong_size, mismatch = [], [], [], []
    for name, digest in sorted(expected_md5.items()):
        path = folder / name
        if not path.is_file():
            missing.append(name)
            continue
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                size, mode = image.size, image.mode
        except Exception:  # noqa: BLE001 - any decoder failure is the defect being counted
            undecodable.append(name)
            continue
        if size != (image_size, image_size) or mode != "RGB":
            wrong_size.append(name)
        recorded = (folder / f"{name}.md5").read_text().split()[0] if (folder / f"{name}.md5").is_file() else ""
        if md5_hex(data) != digest or recorded != digest:
            mismatch.append(name)
    present = {p.name for p in folder.glob("*.png")} if folder.is_dir() else set()
    return FolderDefects(missing, undecodable, wrong_size, mismatch, sorted(present - set(expected_md5)))


def load_folder_images(folder: Path, names: list[str]) -> np.ndarray:
    """The named PNGs of a folder as uint8 ``(N, S, S, 3)``."""
    images = []
    for name in names:
        with Image.open(Path(folder) / name) as image:
            images.append(np.asarray(image.convert("RGB")))
    return np.stack(images) if images else np.zeros((0, 0, 0, 3), np.uint8)
