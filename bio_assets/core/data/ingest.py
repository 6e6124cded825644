"""Walking a dataset folder (one sub-folder per class) into validated image sets."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bio_assets.core.data.class_names import check_class_name
from bio_assets.core.data.fingerprint import UNREADABLE, combine_file_digests, oversize_digest
from bio_assets.core.data.imaging import ACCEPTED_FORMATS, DecodeLimits, ImageRejected, decode_image, read_image_file
from bio_assets.core.data.walk import FileIssue, candidate_files, inside
from bio_assets.core.io.records import ImageSet

if TYPE_CHECKING:
    from bio_assets.core.data.twins import CrossClassTwins


@dataclass(frozen=True)
class ClassNameRule:
    """Maps a class folder name to a class name (SIPaKMeD: strip the ``im_`` prefix)."""

    strip_prefix: str = ""
    strip_suffix: str = ""

    def apply(self, folder_name: str) -> str:
        name = folder_name
        if self.strip_prefix and name.startswith(self.strip_prefix):
            name = name[len(self.strip_prefix) :]
        if self.strip_suffix and name.endswith(self.strip_suffix):
            name = name[: -len(self.strip_suffix)]
        return name


@dataclass(frozen=True)
class DatasetLayout:
    """Where the images of each class live under the dataset root."""

    root: Path
    file_pattern: str = "*"  # glob inside each class folder, e.g. "**/CROPPED/*.bmp"
    class_name_rule: ClassNameRule = ClassNameRule()

    def class_folders(self) -> dict[str, Path]:
        """Class name -> class folder; hidden folders and links leaving the root are ignored.

        ``ValueError`` naming the folder when its class name breaks the class-name rule
        (``class_names.check_class_name``): better at partition sync than hours later.
        """
        root = Path(self.root)
        if not root.is_dir():
            raise ValueError(f"dataset folder {root} does not exist or is not a folder")
        folders: dict[str, Path] = {}
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir() or not inside(entry, root):
                continue
            name = self.class_name_rule.apply(entry.name)
            try:
                check_class_name(name)
            except ValueError as err:
                raise ValueError(f"class folder {entry}: {err}; rename the folder") from None
            if name in folders:
                raise ValueError(f"class folders {folders[name]} and {entry} both map to class {name!r}")
            folders[name] = entry
        return folders


@dataclass
class ClassIngestion:
    """Result of ingesting one class folder: the good images, every file left out, and the
    content fingerprint of the folder as read (see ``fingerprint.class_fingerprint``)."""

    images: ImageSet
    fingerprint: str
    issues: list[FileIssue] = field(default_factory=list)

    @property
    def rejected(self) -> list[FileIssue]:
        return [i for i in self.issues if i.kind == "rejected"]

    @property
    def skipped(self) -> list[FileIssue]:
        return [i for i in self.issues if i.kind == "skipped"]


def ingest_class(
    class_dir: Path,
    class_name: str,
    size: int,
    root: Path,
    *,
    pattern: str = "*",
    limits: DecodeLimits = DecodeLimits(),
    on_progress: Callable[[int, int], None] | None = None,
    formats: tuple[str, ...] = ACCEPTED_FORMATS,
    twins: CrossClassTwins | None = None,
    jpeg_draft: bool = True,
) -> ClassIngestion:
    """Decode every candidate file of one class; bad files are listed, never fatal.

    ``formats``: the Pillow formats accepted. ``twins``: the dataset's cross-class twins
    (``twins.find_cross_class_twins``); this class's are left out, naming the other classes.
    Raises ``ValueError`` naming the folder when not a single valid image remains.
    """
    check_class_name(class_name)
    files, issues = candidate_files(class_dir, pattern, root)
    arrays: list[np.ndarray] = []
    names: list[str] = []
    hashes: list[str] = []
    first_with_hash: dict[str, str] = {}
    file_digests: list[tuple[str, bytes]] = []
    for done, path in enumerate(files, start=1):
        name = path.relative_to(class_dir).as_posix()
        try:
            file_size = os.stat(path).st_size
            if file_size > limits.max_file_bytes:
                # Counted by its size in the fingerprint and never read, as class_fingerprint does.
                file_digests.append((name, oversize_digest(file_size)))
                issues.append(
                    FileIssue(
                        name, "rejected", f"file is {file_size} bytes, above the limit of {limits.max_file_bytes}"
                    )
                )
                continue
            data = read_image_file(path, limits)
        except OSError as err:
            file_digests.append((name, UNREADABLE))
            issues.append(FileIssue(name, "rejected", f"unreadable: {err.strerror}"))
            continue
        except ImageRejected as err:  # grew past the limit after the stat
            file_digests.append((name, UNREADABLE))
            issues.append(FileIssue(name, "rejected", err.reason))
            continue
        raw_digest = hashlib.sha256(data).digest()
        file_digests.append((name, raw_digest))
        digest = raw_digest.hex()
        twin = twins.reason(class_name, name) if twins is not None else None
        if twin is not None:
            issues.append(FileIssue(name, "rejected", twin))
            continue
        if digest in first_with_hash:
            # Identical bytes in two splits would leak; keep the first copy only.
            issues.append(FileIssue(name, "rejected", f"duplicate content of {first_with_hash[digest]}"))
            continue
        try:
            arrays.append(decode_image(data, size, limits, formats, jpeg_draft=jpeg_draft))
        except ImageRejected as err:
            issues.append(FileIssue(name, "rejected", err.reason))
            continue
        first_with_hash[digest] = name
        names.append(name)
        hashes.append(digest)
        if on_progress is not None:
            on_progress(done, len(files))
    if not arrays:
        raise ValueError(
            f"class folder {class_dir} has no valid image "
            f"({len(files)} candidate files matching {pattern!r}, {len(issues)} left out)"
        )
    images = ImageSet(
        images=np.stack(arrays),
        file_names=np.array(names, dtype=np.str_),
        sha256=np.array(hashes, dtype=np.str_),
        class_name=class_name,
    )
    return ClassIngestion(images=images, fingerprint=combine_file_digests(file_digests), issues=issues)
