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
    profile: paper                # the default settings of runs that name no profile
    owners: [team:cytology]       # Dagster asset owners (emails or team:name)
    rebuild_cron: "0 2 * * *"     # searches and trainings rebuild at most once per window
    rebuild_timezone: Europe/Berlin   # the window's time zone (IANA name; default UTC)
    settings:                     # per-dataset values over the profile's, per asset
      image_splits: {train_fraction: 0.8, val_fraction: 0.1, test_fraction: 0.1}
    cnn_baselines: [lenet5, resnet18]   # a subset of the baseline partitions (default: all)
```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bio_assets.core.data.ingest import ClassNameRule, DatasetLayout
from bio_assets.core.data.splits import compile_group_pattern
from bio_assets.core.io.atomic import atomic_write
from bio_assets.core.io.locks import file_lock
from bio_assets.core.profiles import PROFILES

BUILTIN_DEMO = "builtin:demo"
DEFAULT_REBUILD_CRON = "0 2 * * *"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# Dagster owners: an email address or team:<name>.
_OWNER = re.compile(r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")
_CRON_FIELDS = 5
LIST_FIELDS = ("owners", "cnn_baselines", "gan_baselines", "optimizers")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    folder: str
    file_pattern: str = "*"
    strip_prefix: str = ""
    strip_suffix: str = ""
    group_pattern: str = ""  # regex; its first group names the source (slide) a file came from
    profile: str = "paper"  # the default profile of runs that name none
    owners: tuple[str, ...] = ()
    rebuild_cron: str = DEFAULT_REBUILD_CRON
    rebuild_timezone: str = "UTC"  # an IANA time zone: the window opens at rebuild_cron's local time
    # asset name -> {setting: value}: this dataset's values over the profile's.
    settings: Mapping[str, Mapping[str, object]] = field(default_factory=dict, hash=False)
    # Subsets of the model partitions; empty: every model.
    cnn_baselines: tuple[str, ...] = ()
    gan_baselines: tuple[str, ...] = ()
    optimizers: tuple[str, ...] = ()

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

        for owner in self.owners:
            if not _OWNER.match(owner):
                raise ValueError(f"dataset {self.name!r}: owner {owner!r} must be an email address or team:<name>")
        if len(self.rebuild_cron.split()) != _CRON_FIELDS:
            raise ValueError(f"dataset {self.name!r}: rebuild_cron {self.rebuild_cron!r} is not a 5-field cron string")
        try:
            ZoneInfo(self.rebuild_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"dataset {self.name!r}: rebuild_timezone {self.rebuild_timezone!r} is not an IANA time zone "
                "such as 'UTC' or 'Europe/Berlin'"
            ) from None
        if not isinstance(self.settings, Mapping) or not all(isinstance(v, Mapping) for v in self.settings.values()):
            raise ValueError(f"dataset {self.name!r}: settings must map asset names to {{setting: value}} mappings")

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
    entries = [entry_from_mapping(item, path) for item in raw]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset registry {path} names a dataset twice: {names}")
    return entries


def entry_from_mapping(item: object, path: Path) -> DatasetEntry:
    """One registry entry from its YAML mapping; unknown keys and wrong types are named."""
    allowed = {f.name for f in fields(DatasetEntry)}
    if not isinstance(item, dict) or set(item) - allowed:
        raise ValueError(f"dataset registry {path}: entry {item!r} has unknown keys; allowed: {sorted(allowed)}")
    values: dict[str, object] = {}
    for key, value in item.items():
        if key in LIST_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"dataset registry {path}: {key} of {item.get('name')!r} must be a list of strings")
            values[key] = tuple(value)
        elif key == "settings":
            if not isinstance(value, dict):
                raise ValueError(f"dataset registry {path}: settings of {item.get('name')!r} must be a mapping")
            values[key] = value
        else:
            values[key] = str(value)
    return DatasetEntry(**values)


def entry_to_mapping(entry: DatasetEntry) -> dict[str, object]:
    """The YAML mapping of an entry, without the fields left at their defaults."""
    defaults = DatasetEntry("x", "x")
    row: dict[str, object] = {}
    for key, value in asdict(entry).items():
        if key != "name" and key != "folder" and value == getattr(defaults, key):
            continue
        row[key] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
    return row


def _lock_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".lock")


def _write_registry(path: Path, entries: list[DatasetEntry]) -> None:
    rows = [entry_to_mapping(e) for e in entries]
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
