"""Finding the candidate image files of a class folder, safely.

The walk matches the file pattern (``*``, ``?``, ``[...]`` within one path component, ``**``
for any number of folders, as ``pathlib.Path.glob``) itself instead of calling ``glob``, so
that it never enters a symbolically linked folder that leads outside the dataset root (a
``**`` pattern would otherwise follow it anywhere, even into a loop), and it visits a folder
reached twice through links only once.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

OUTSIDE = "symbolic link leading outside the dataset folder"


@dataclass(frozen=True)
class FileIssue:
    """A file left out of a class, with the reason; ``kind`` is 'rejected' or 'skipped'."""

    file_name: str
    kind: str
    reason: str


def inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def pattern_parts(pattern: str) -> tuple[str, ...]:
    """The components of a relative glob; ``ValueError`` for an absolute one or one with '..'."""
    parts = tuple(p for p in pattern.split("/") if p not in ("", "."))
    if not parts or pattern.startswith("/") or ".." in parts:
        raise ValueError(f"file pattern {pattern!r} must be a relative glob inside the class folder, without '..'")
    return parts if parts[-1] != "**" else (*parts, "*")  # a trailing '**' means every file below


class _Walk:
    def __init__(self, class_dir: Path, root: Path) -> None:
        self.class_dir = Path(class_dir)
        self.root = os.path.realpath(root)
        self.matches: set[Path] = set()
        self.issues: dict[str, FileIssue] = {}
        self.visited: set[tuple[str, tuple[str, ...]]] = set()

    def _skip(self, path: Path, reason: str) -> None:
        name = path.relative_to(self.class_dir).as_posix()
        self.issues.setdefault(name, FileIssue(name, "skipped", reason))

    def _entries(self, folder: Path) -> list[os.DirEntry]:
        try:
            with os.scandir(folder) as entries:
                return sorted(entries, key=lambda e: e.name)
        except OSError as err:
            self._skip(folder, f"cannot list folder: {err.strerror}")
            return []

    def _enterable(self, entry: os.DirEntry) -> bool:
        """A folder to descend into: a real one, or a link to a folder inside the root."""
        try:
            if not entry.is_dir():  # follows links
                return False
        except OSError:
            return False
        if entry.is_symlink() and not inside(Path(entry.path), self.root):
            self._skip(Path(entry.path), OUTSIDE)
            return False
        return True

    def match(self, folder: Path, parts: tuple[str, ...]) -> None:
        key = (os.path.realpath(folder), parts)
        if key in self.visited:
            return  # reached again through a link (or a link loop)
        self.visited.add(key)
        head, rest = parts[0], parts[1:]
        if head == "**":
            self.match(folder, rest)
            for entry in self._entries(folder):
                if self._enterable(entry):
                    self.match(Path(entry.path), parts)
            return
        for entry in self._entries(folder):
            if not fnmatchcase(entry.name, head):
                continue
            if rest:
                if self._enterable(entry):
                    self.match(Path(entry.path), rest)
            else:
                self.matches.add(Path(entry.path))


def candidate_files(class_dir: Path, pattern: str, root: Path) -> tuple[list[Path], list[FileIssue]]:
    """Regular, visible files matching ``pattern`` whose real path stays inside ``root``, sorted;
    and the files and links left out, with the reason."""
    walk = _Walk(class_dir, root)
    walk.match(Path(class_dir), pattern_parts(pattern))
    accepted: list[Path] = []
    for path in sorted(walk.matches):
        relative = path.relative_to(class_dir)
        if any(part.startswith(".") for part in relative.parts):
            walk._skip(path, "hidden file")
            continue
        if not inside(path, root):
            walk._skip(path, OUTSIDE)
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            walk._skip(path, f"cannot stat: {err.strerror}")
            continue
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            walk._skip(path, "not a regular file")
            continue
        accepted.append(path)
    return accepted, sorted(walk.issues.values(), key=lambda issue: issue.file_name)
