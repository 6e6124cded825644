"""``bio-assets materialize``: a dataset's graph materialized through the same Dagster machinery as
the UI's "Materialize all": an asset backfill, run by the daemon through the run queue, pools,
run monitoring and retries of ``dagster.yaml``.

The CLI is a client of the instance's service (``bio_assets.app.service``): it uses the running one
or starts one that outlives it while other clients use it. A dataset the service does not know yet
(registered since it loaded) makes the CLI reload the code location first. Ctrl-C or SIGTERM cancels
this CLI's backfill and its runs, and nothing else, and exits within seconds; searches and trainings
keep what they saved, and the next call resumes them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from bio_assets.app.service import DataPaths, ServiceFiles, reload_code_location, service_client
from bio_assets.app.summary import print_summary, run_failures
from bio_assets.app.webserver import FINISHED_BACKFILL_STATES, DagsterWebserver
from bio_assets.assets.common import PROFILE_TAG
from bio_assets.assets.partitions import class_partition_changes, class_partitions_name
from bio_assets.core.registry import DatasetEntry
from bio_assets.definitions import load_definitions
from resources.image_dataset import ImageDatasetResource

LAUNCHED_BY_TAG = "bio_assets/launched_by"
POLL_SECONDS = 2.0
KNOWN_ASSETS = """
query Known($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { assetKey { path } } }
"""


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def dagster_home() -> Path:
    if not os.environ.get("DAGSTER_HOME"):
        raise ValueError(
            "DAGSTER_HOME is not set; run through `make demo` or export DAGSTER_HOME=<folder with dagster.yaml>"
        )
    home = Path(os.environ["DAGSTER_HOME"]).absolute()
    home.mkdir(parents=True, exist_ok=True)
    if not os.access(home, os.W_OK | os.X_OK):
        # Another user's instance: its storage and service files are theirs to write.
        try:
            import pwd

            owner = f"user {pwd.getpwuid(home.stat().st_uid).pw_name}"
        except (KeyError, ImportError):
            owner = "another user"
        raise ValueError(f"the Dagster instance {home} belongs to {owner} and you may not write it; "
                         "export DAGSTER_HOME=<a folder of your own with a dagster.yaml>")  # fmt: skip
    return home


@contextmanager
def open_instance() -> Iterator[dg.DagsterInstance]:
    dagster_home()
    with dg.DagsterInstance.get() as instance:
        yield instance


def sync_class_partitions(instance: dg.DagsterInstance, dataset: str, class_names: list[str]) -> None:
    """Make the dataset's class partitions exactly its class folders (never deleting all of them)."""
    name = class_partitions_name(dataset)
    added, removed = class_partition_changes(dataset, set(instance.get_dynamic_partitions(name)), set(class_names))
    if added:
        instance.add_dynamic_partitions(name, added)
    for gone in removed:
        instance.delete_dynamic_partition(name, gone)


# Asset groups that "everything" leaves out: each repeats much of the graph (hours at the paper profile).
OPT_IN_GROUPS = frozenset({"studies"})


def selected_keys(defs: dg.Definitions, select: str, dataset: str) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    try:
        selected = dg.AssetSelection.from_string(select).resolve(graph)
    except Exception as err:  # Dagster raises its own error types for a malformed selection
        raise ValueError(f"invalid --select {select!r}: {err}") from None
    # Everything ("*", the default) means the method's graph: opt-in studies run only when named.
    keys = sorted(
        (
            k
            for k in selected
            if k.path[0] == dataset
            and graph.get(k).is_materializable
            and not (select.strip() == "*" and graph.get(k).group_name in OPT_IN_GROUPS)
        ),
        key=lambda k: k.to_user_string(),
    )
    if not keys:
        raise ValueError(f"selection {select!r} matches no asset of dataset {dataset!r}")
    return keys


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` (so the backfill can be canceled cleanly)."""

    def handler(signum, _frame):
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id})))


def describe_run(run: dg.DagsterRun) -> str:
    names = sorted(k.path[-1] for k in (run.asset_selection or set()))
    partition = run.tags.get("dagster/partition")
    first, last = run.tags.get("dagster/asset_partition_range_start"), run.tags.get("dagster/asset_partition_range_end")
    if partition is None and first is not None:
        partition = first if first == last else f"{first}..{last}"
    return f"{', '.join(names)}" + (f" [{partition}]" if partition else "")


def follow_backfill(instance: dg.DagsterInstance, web: DagsterWebserver, backfill_id: str) -> None:
    """Print each run of the backfill as it starts and ends, until the backfill is done."""
    printed: dict[str, str] = {}
    while True:
        status = web.backfill_status(backfill_id)
        runs = backfill_runs(instance, backfill_id)
        for run in sorted(runs, key=lambda r: r.run_id):
            state = run.status.value
            if printed.get(run.run_id) != state and state not in ("QUEUED", "NOT_STARTED", "STARTING"):
                printed[run.run_id] = state
                print(f"  {time.strftime('%H:%M:%S')} {state.lower():<9} {describe_run(run)}", flush=True)
        if status in FINISHED_BACKFILL_STATES and not any(
            r.status.value in ("QUEUED", "STARTING", "STARTED", "CANCELING", "NOT_STARTED") for r in runs
        ):
            return
        time.sleep(POLL_SECONDS)


def cancel_backfill(instance: dg.DagsterInstance, web: DagsterWebserver, backfill_id: str, grace: float = 20.0) -> None:
    """Stop launching, ask the backfill's runs to terminate, wait up to ``grace`` seconds."""
    web.cancel_backfill(backfill_id)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        live = [r.run_id for r in backfill_runs(instance, backfill_id) if not r.is_finished]
        if not live:
            return
        web.terminate_runs(live)
        time.sleep(1.0)


def unknown_to_service(web: DagsterWebserver, keys: list[dg.AssetKey]) -> list[dg.AssetKey]:
    """The keys the service's code location does not define (it loaded before they were registered)."""
    nodes = web.query(KNOWN_ASSETS, {"keys": [{"path": list(k.path)} for k in keys]})["assetNodes"]
    known = {tuple(node["assetKey"]["path"]) for node in nodes}
    return [k for k in keys if tuple(k.path) not in known]


def materialize_dataset(
    entry: DatasetEntry, profile: str, select: str, registry: Path, *, registry_changed: bool = False
) -> list[str]:
    """Materialize ``select`` (restricted to ``entry``'s assets) with ``profile``; the failures.
    ``registry_changed``: this command changed ``entry``, so the service reloads its code location."""
    started = time.perf_counter()
    home = dagster_home()
    paths = DataPaths(Path(registry).absolute(), DataPaths.current().data_home)
    backfill_id = None
    with open_instance() as instance:
        defs = load_definitions(registry)
        keys = selected_keys(defs, select, entry.name)
        classes = sorted(ImageDatasetResource().layout(entry.name).class_folders())
        sync_class_partitions(instance, entry.name, classes)
        with interrupts_raise():
            try:
                with service_client(home, paths=paths) as connection:
                    web = DagsterWebserver(connection.url)
                    if registry_changed or unknown_to_service(web, keys):
                        print("reloading the code location: the registry changed since the service loaded it")
                        reload_code_location(connection, ServiceFiles.of(home))
                    tags = {PROFILE_TAG: profile, LAUNCHED_BY_TAG: "bio-assets materialize", **connection.tags}
                    title = f"bio-assets materialize {entry.name} ({profile})"
                    backfill_id = web.launch_backfill(keys, partitions=None, tags=tags, title=title)
                    print(
                        f"== backfill {backfill_id}: {len(keys)} assets of {entry.name!r}, {len(classes)} classes, "
                        f"profile {profile}; follow it in the UI at {connection.url}/runs/b/{backfill_id}",
                        flush=True,
                    )
                    try:
                        follow_backfill(instance, web, backfill_id)
                    except Interrupted:
                        print("interrupted: canceling the backfill and its runs", flush=True)
                        cancel_backfill(instance, web, backfill_id)
                        raise
            except Interrupted as stop:
                if backfill_id is not None:
                    print_summary(instance, defs, entry.name, backfill_runs(instance, backfill_id))
                raise SystemExit(128 + stop.signum) from None
        runs = backfill_runs(instance, backfill_id)
        print_summary(instance, defs, entry.name, runs)
        failures = run_failures(instance, runs, entry.name)
    print(f"\nwall time {time.perf_counter() - started:.1f} s; profile {profile}; instance {home}")
    print("Open the UI with `make ui` (http://127.0.0.1:3000) to see runs, lineage, metadata and checks.")
    return failures


def summarize(dataset: str, registry: Path) -> None:
    """Print what is materialized for ``dataset`` in the instance."""
    with open_instance() as instance:
        print_summary(instance, load_definitions(registry), dataset, [])
