"""The dataset registry: a YAML file naming each dataset and where its images live.

```yaml
datasets:
  - name: demo
    folder: builtin:demo        # the embedded, generated demo dataset
    profile: demo
  - name: sipakmed
    folder: /data/SIPaKMeD
    file_pattern: "**/CROPPED/*.bmp"
    strip_prefix: "im_"
    group_pattern: "^(\\d+)_"     # cells cropped from one slide stay in one split
    profile: paper
```
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from bio_assets.core.data.ingest import ClassNameRule, DatasetLayout
from bio_assets.core.data.splits import compile_group_pattern
from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.locks import file_lock
from bio_assets.core.profiles import PROFILES

BUILTIN_DEMO = "builtin:demo"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    folder: str
    file_pattern: str = "*"
    strip_prefix: str = ""
    strip_suffix: str = ""
    group_pattern: str = ""  # regex; its first group names the source (slide) a file came from
    profile: str = "paper"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"dataset name {self.name!r} is not allowed: use lowercase letters, digits and '_', "
                "starting with a letter (it becomes an asset-key prefix)"
            )
        if self.profile not in PROFILES:
            raise ValueError(f"dataset {self.name!r}: profile {self.profile!r} is not one of {PROFILES}")
        if not self.folder:
            raise ValueError(f"dataset {self.name!r} has no folder")
        if self.group_pattern:
            compile_group_pattern(self.group_pattern)
        if not self.file_pattern or Path(self.file_pattern).is_absolute() or ".." in Path(self.file_pattern).parts:
            raise ValueError(
                f"dataset {self.name!r}: file_pattern {self.file_pattern!r} must be a relative glob inside each "
                "class folder"
            )

    @property
    def is_builtin_demo(self) -> bool:
        return self.folder == BUILTIN_DEMO

    def layout(self, demo_root: Path) -> DatasetLayout:
        root = Path(demo_root) if self.is_builtin_demo else Path(self.folder).expanduser()
        return DatasetLayout(
            root=root,
            file_pattern=self.file_pattern,
            class_name_rule=ClassNameRule(self.strip_prefix, self.strip_suffix),
        )


DEFAULT_ENTRIES = (DatasetEntry(name="demo", folder=BUILTIN_DEMO, profile="demo"),)


def load_registry(path: Path | None) -> list[DatasetEntry]:
    """Entries of the registry file, or the default (``demo`` only) when it does not exist."""
    if path is None or not Path(path).exists():
        return list(DEFAULT_ENTRIES)
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"dataset registry {path} is not valid YAML: {err}") from None
    raw = document.get("datasets") if isinstance(document, dict) else None
    if not isinstance(raw, list):
        raise ValueError(f"dataset registry {path} must hold a 'datasets:' list")
    entries = []
    allowed = set(DatasetEntry.__dataclass_fields__)
    for item in raw:
        if not isinstance(item, dict) or set(item) - allowed:
            raise ValueError(f"dataset registry {path}: entry {item!r} has unknown keys; allowed: {sorted(allowed)}")
        entries.append(DatasetEntry(**{k: str(v) for k, v in item.items()}))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset registry {path} names a dataset twice: {names}")
    return entries


def _lock_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".lock")


def _write_registry(path: Path, entries: list[DatasetEntry]) -> None:
    rows = [{k: v for k, v in asdict(e).items() if v != DatasetEntry.__dataclass_fields__[k].default} for e in entries]
    text = yaml.safe_dump({"datasets": rows}, sort_keys=False)
    atomic_write(Path(path), lambda handle: handle.write(text.encode()))


def save_registry(path: Path, entries: list[DatasetEntry]) -> None:
    """Replace the registry by ``entries``. To change what is there, use ``update_registry``:
    entries read earlier may miss another process's change, which this would overwrite."""
    with file_lock(_lock_path(path), what="dataset registry"):
        _write_registry(path, entries)


def update_registry(path: Path, change: Callable[[list[DatasetEntry]], list[DatasetEntry]]) -> list[DatasetEntry]:
    """Read, ``change`` and write the registry under its lock, so concurrent updates are never
    lost; the entries written. ``change`` may raise (``ValueError``) to leave the file as it is."""
    with file_lock(_lock_path(path), what="dataset registry"):
        entries = change(load_registry(path))
        _write_registry(path, entries)
    return entries


def find_entry(entries: list[DatasetEntry], name: str) -> DatasetEntry:
    for entry in entries:
        if entry.name == name:
            return entry
    raise ValueError(f"no dataset named {name!r} in the registry; known: {[e.name for e in entries]}")


def with_entry(entries: list[DatasetEntry], entry: DatasetEntry) -> list[DatasetEntry]:
    """Entries with ``entry`` added, or replacing the entry of the same name."""
    return [e for e in entries if e.name != entry.name] + [entry]


def renamed(entries: list[DatasetEntry], old: str, new: str) -> list[DatasetEntry]:
    source = find_entry(entries, old)
    if any(e.name == new for e in entries):
        raise ValueError(f"a dataset named {new!r} already exists")
    return [replace(source, name=new) if e.name == old else e for e in entries]
