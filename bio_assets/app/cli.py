"""The ``bio-assets`` console script: materialize a dataset's graph, manage the registry, and
generate images, classify a folder or export the synthetic dataset from what was materialized."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from bio_assets.app.errors import ServiceError
from bio_assets.core.profiles import PROFILES
from bio_assets.core.registry import (
    BUILTIN_DEMO,
    DatasetEntry,
    find_entry,
    load_registry,
    renamed,
    update_registry,
    with_entry,
)
from resources.paths import registry_path

DATASET_ENV = "BIO_ASSETS_DATASET_DIR"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bio-assets", description="Materialize bio-assets datasets into the Dagster instance at $DAGSTER_HOME."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "materialize", help="materialize a selection as one backfill (as the UI's Materialize all), and wait"
    )
    run.add_argument(
        "--profile", choices=PROFILES, help="settings of every asset of this run (default: the dataset's profile)"
    )
    run.add_argument(
        "--dataset",
        metavar="DIR",
        help=f"image folder with one sub-folder per class; registered under --name (also ${DATASET_ENV})",
    )
    run.add_argument("--name", help="dataset name (default: the folder's name with --dataset, else 'demo')")
    run.add_argument(
        "--file-pattern", default=None, help="glob inside each class folder, e.g. '**/CROPPED/*.bmp' (with --dataset)"
    )
    run.add_argument(
        "--strip-prefix", default=None, help="removed from class folder names, e.g. 'im_' (with --dataset)"
    )
    run.add_argument(
        "--group-pattern",
        default=None,
        help="regex whose first group names a file's source slide, e.g. '^(\\d+)_' (with --dataset)",
    )
    run.add_argument(
        "--select",
        default="*",
        help="Dagster asset selection, e.g. 'key:\"demo/image_splits\"+' (default: the whole graph but the opt-in "
        "studies; name one to run it, e.g. 'key:\"demo/data_efficiency\"')",
    )

    datasets = commands.add_parser("datasets", help="list, add, rename or remove registry entries")
    actions = datasets.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="show the registry")
    add = actions.add_parser("add", help="register a folder")
    add.add_argument("name")
    add.add_argument("folder")
    add.add_argument("--file-pattern", default="*")
    add.add_argument("--strip-prefix", default="")
    add.add_argument("--profile", choices=PROFILES, default="paper")
    rename = actions.add_parser("rename", help="rename an entry (its materialized assets stay under the old prefix)")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.add_argument(
        "--force", action="store_true", help="rename even though assets were materialized under the old name"
    )
    remove = actions.add_parser("remove", help="remove an entry (nothing on disk is deleted)")
    remove.add_argument("name")
    remove.add_argument("--force", action="store_true", help="remove even though assets were materialized for it")

    ui = commands.add_parser(
        "ui", help="the Dagster UI, daemon and code server of this instance (or the running ones); Ctrl-C stops them"
    )
    ui.add_argument("--port", type=int, default=3000, help="0: any free port")
    # The service a client starts for itself: detached, stops when no client uses it for --idle seconds.
    service = commands.add_parser("service")
    service.add_argument("--port", type=int, default=0)
    service.add_argument("--idle", type=float, required=True)

    worker = commands.add_parser(
        "worker", help="a Celery worker that runs the steps of runs whose executor is celery (BIO_ASSETS_STEP_EXECUTOR)"
    )
    worker.add_argument("--queues", default="gpu,cpu", help="queues to consume: gpu (network steps), cpu (the rest)")
    worker.add_argument("--name", default=None, help="worker name (default: the host name)")

    summary = commands.add_parser("summary", help="print what is materialized for a dataset")
    summary.add_argument("--name", default="demo")

    generate = commands.add_parser(
        "generate", help="synthetic images from a trained generator, as PNG + MD5 files in one folder per class"
    )
    generate.add_argument("--count", type=int, required=True, help="images per class")
    generate.add_argument("--class", dest="class_name", help="only this class (default: every class)")
    generate.add_argument(
        "--model",
        metavar="DATASET_OR_RUN_ID",
        help="a dataset (its newest trained_gan) or the run id of a past trained_gan (default: the newest of all)",
    )
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--publishable",
        action="store_true",
        help="refuse every class whose quality gates did not pass on this generator's images (as export does)",
    )
    generate.add_argument("--out", required=True, type=Path, help="output folder; <out>/<class>/ must be new or empty")

    predict = commands.add_parser("predict", help="classify every image file in a folder into a CSV")
    predict.add_argument("folder", type=Path)
    predict.add_argument("--out", required=True, type=Path, help="CSV of file_name, predicted_class, probability")
    predict.add_argument(
        "--model",
        metavar="DATASET_OR_RUN_ID",
        help="a dataset (its newest extended_classifier, else classifier) or the run id of a past one",
    )

    export = commands.add_parser(
        "export", help="the synthetic dataset as a package: class folders, MD5 files, catalog.sql and catalog.csv"
    )
    export.add_argument("folder", type=Path, help="new or empty folder")
    export.add_argument("--dataset", help="dataset name (default: the only one with synthetic images)")
    return parser


def _entry_for_run(args: argparse.Namespace, registry: Path) -> tuple[DatasetEntry, bool]:
    """The dataset to run: a folder to register (``--dataset`` / env) or a registered name; and
    whether this call changed the registry."""
    entries = load_registry(registry)
    folder = args.dataset or os.environ.get(DATASET_ENV)
    if folder is None:
        return find_entry(entries, args.name or "demo"), False
    path = Path(folder).expanduser().absolute()
    if not path.is_dir():
        raise ValueError(f"dataset folder {path} does not exist or is not a folder")
    name = args.name or path.name.lower().replace("-", "_").replace(" ", "_")
    given = {"file_pattern": args.file_pattern, "strip_prefix": args.strip_prefix, "group_pattern": args.group_pattern}
    changed = []

    def register(current: list[DatasetEntry]) -> list[DatasetEntry]:
        existing = next((e for e in current if e.name == name), None)
        # A new folder takes the run's profile as its default (for automation); an entry keeps its own.
        base = existing or DatasetEntry(name=name, folder=str(path), profile=args.profile or "paper")
        entry = replace(base, folder=str(path), **{k: v for k, v in given.items() if v is not None})
        if existing and existing.folder != entry.folder and existing.folder != BUILTIN_DEMO:
            raise ValueError(
                f"dataset {name!r} is registered with folder {existing.folder}; choose another --name or rename it"
            )
        changed.append(existing != entry)
        return with_entry(current, entry)

    entry = find_entry(update_registry(registry, register), name)
    if changed[0]:
        print(f"registered dataset {name!r} -> {path} in {registry}")
    return entry, changed[0]


def _materialized_assets(dataset: str) -> list[str]:
    from bio_assets.app.driver import open_instance

    with open_instance() as instance:
        return sorted(k.to_user_string() for k in instance.get_asset_keys(prefix=[dataset]))


def _datasets_command(args: argparse.Namespace, registry: Path) -> int:
    entries = load_registry(registry)
    if args.action == "list":
        for e in entries:
            extra = f" pattern={e.file_pattern}" if e.file_pattern != "*" else ""
            extra += f" strip_prefix={e.strip_prefix}" if e.strip_prefix else ""
            print(f"{e.name}\t{e.folder}\tprofile={e.profile}{extra}")
        return 0
    if args.action == "add":
        folder = str(Path(args.folder).expanduser().absolute())
        entry = DatasetEntry(args.name, folder, args.file_pattern, args.strip_prefix, profile=args.profile)

        def add(current: list[DatasetEntry]) -> list[DatasetEntry]:
            if any(e.name == args.name for e in current):
                raise ValueError(f"dataset {args.name!r} is already registered")
            return [*current, entry]

        update_registry(registry, add)
        print(f"registered {entry.name!r} -> {entry.folder}")
        return 0
    name = args.old if args.action == "rename" else args.name
    find_entry(entries, name)
    dependants = _materialized_assets(name)
    if dependants and not args.force:
        raise ValueError(
            f"dataset {name!r} has materialized assets ({', '.join(dependants)}); pass --force to {args.action} it "
            "anyway (stored values and history are kept, never deleted)"
        )
    if args.action == "rename":
        update_registry(registry, lambda current: renamed(current, args.old, args.new))
        print(f"renamed {args.old!r} to {args.new!r}; history stays under {args.old}/")
    else:
        update_registry(registry, lambda current: [e for e in current if e.name != name])
        print(f"removed {name!r} from the registry; its files and history were kept")
    return 0


def _service_command(args: argparse.Namespace) -> int:
    from bio_assets.app.driver import dagster_home
    from bio_assets.app.service import DataPaths, run_detached_service, serve_in_foreground

    project = Path(__file__).resolve().parents[2]
    if args.command == "ui":
        return serve_in_foreground(dagster_home(), project, port=args.port, paths=DataPaths.current())
    return run_detached_service(dagster_home(), project, port=args.port, idle=args.idle, paths=DataPaths.current())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    registry = registry_path()
    try:
        if args.command == "datasets":
            return _datasets_command(args, registry)
        if args.command in ("generate", "predict", "export"):
            from bio_assets.app import user_commands

            if args.command == "generate":
                return user_commands.generate(
                    args.count, args.class_name, args.model, args.out, args.seed, publishable=args.publishable
                )
            if args.command == "predict":
                return user_commands.predict(args.folder, args.out, args.model)
            return user_commands.export(args.folder, args.dataset)
        if args.command in ("ui", "service"):
            return _service_command(args)
        if args.command == "worker":
            from bio_assets.app.celery_worker import main as worker_main

            return worker_main(["--queues", args.queues, *(["--name", args.name] if args.name else [])])
        from bio_assets.app.driver import materialize_dataset, summarize

        if args.command == "summary":
            find_entry(load_registry(registry), args.name)
            summarize(args.name, registry)
            return 0
        entry, registry_changed = _entry_for_run(args, registry)
        failures = materialize_dataset(
            entry, args.profile or entry.profile, args.select, registry, registry_changed=registry_changed
        )
    except (ValueError, ServiceError) as err:
        print(f"bio-assets: error: {err}", file=sys.stderr)
        return 2
    if failures:
        print("bio-assets: failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
