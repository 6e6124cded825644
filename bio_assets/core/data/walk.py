"""Finding the candidate image files of a class folder, safely."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileIssue:
    """A file left out of a class, with the reason; ``kind`` is 'rejected' or 'skipped'."""

    file_name: str
    kind: str
    reason: str


def inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def candidate_files(class_dir: Path, pattern: str, root: Path) -> tuple[list[Path], list[FileIssue]]:
    """Regular, visible files matching ``pattern`` whose real path stays inside ``root``."""
    accepted: list[Path] = []
    skipped: list[FileIssue] = []
    for path in sorted(class_dir.glob(pattern)):
        relative = path.relative_to(class_dir)
        name = relative.as_posix()
        if any(part.startswith(".") for part in relative.parts):
            skipped.append(FileIssue(name, "skipped", "hidden file"))
            continue
        if path.is_symlink() and not inside(path, root):
            skipped.append(FileIssue(name, "skipped", "symbolic link leading outside the dataset folder"))
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            skipped.append(FileIssue(name, "skipped", f"cannot stat: {err.strerror}"))
            continue
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            skipped.append(FileIssue(name, "skipped", "not a regular file"))
            continue
        accepted.append(path)
    return accepted, skipped
