"""``make cluster-demo`` (``python -m bio_assets.app.cluster``): the cluster path on one machine.

Starts Celery workers (``bio-assets worker``) as separate processes on stand-in hosts (network
namespaces where ``ip netns`` works, plain processes otherwise, ``bio_assets.app.hosts``), points
the instance at PostgreSQL (run storage, event log and the synthetic catalog) and the step executor
at Celery on RabbitMQ, materializes the data group and the CNN search of the dataset in
``BIO_ASSETS_DATASET_DIR`` (default: the demo data) through the bio-assets service exactly as
``bio-assets materialize`` does, prints which host ran each step, and stops everything it started.
Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from bio_assets.app.hosts import Host, create_hosts, namespaces_available, remove_hosts
from jobs.executors import BROKER_ENV, EXECUTOR_ENV, PLAINTEXT_ENV

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_CONFIG = ROOT / "deploy" / "cluster" / "dagster.yaml"
RABBITMQ_PORT, POSTGRES_PORT = 5672, 5432
DEFAULT_DATABASE = "bio_assets_cluster"
DEFAULT_SELECTION = 'group:data or key:"{name}/searched_cell" or key:"{name}/macro_architecture"'
WORKER_MODULE = "bio_assets.app.celery_worker"
WORKER_FIELD = "Celery worker"  # in the metadata of dagster-celery's engine event when a worker takes a step


@dataclass
class Worker:
    host: Host
    process: subprocess.Popen
    log_path: Path

    @property
    def name(self) -> str:
        return self.host.name

    def kill(self) -> None:
        """SIGKILL the worker and its step process, as when its host dies."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


@dataclass
class Cluster:
    workers: list[Worker]
    hosts: list[Host]
    isolated: bool
    environment: dict[str, str] = field(default_factory=dict)  # what the main host's processes use


def database_url(host: str, database: str) -> str:
    return f"postgresql+psycopg2://postgres@{host}:{POSTGRES_PORT}/{database}"


def ensure_database(database: str) -> None:
    """Create the cluster's PostgreSQL database if it does not exist (trust or PG* environment auth)."""
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", port=POSTGRES_PORT, user="postgres", dbname="postgres")
    try:
        admin.autocommit = True  # CREATE DATABASE runs outside a transaction
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{database}"')
    finally:
        admin.close()


def services_environment(address: str, database: str) -> dict[str, str]:
    """How a host at ``address``'s side reaches PostgreSQL (instance, catalog) and RabbitMQ."""
    environment = {
        EXECUTOR_ENV: "celery",
        "DAGSTER_PG_HOST": address,
        "DAGSTER_PG_DB": database,
        "BIO_ASSETS_CATALOG_URL": database_url(address, database),
        BROKER_ENV: f"pyamqp://guest:guest@{address}:{RABBITMQ_PORT}//",
    }
    if address != "127.0.0.1":
        # The demo's hosts reach the broker over a private veth link of this machine, without TLS.
        environment[PLAINTEXT_ENV] = "1"
    return environment


def prepare_instance(home: Path, database: str) -> None:
    """``home/dagster.yaml`` from deploy/cluster/dagster.yaml (kept if present), and its database."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(CLUSTER_CONFIG, home / "dagster.yaml")
    ensure_database(database)


def wait_for_workers(names: list[str], timeout: float) -> None:
    """Until every named worker answers a Celery ping; ``RuntimeError`` naming the missing ones."""
    from bio_assets.app.celery_worker import celery_app

    app = celery_app()
    deadline = time.monotonic() + timeout
    missing = set(names)
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=2.0) or []
        missing = {n for n in names if not any(next(iter(r)).startswith(f"{n}@") for r in replies)}
        if not missing:
            return
    raise RuntimeError(f"workers {sorted(missing)} did not answer within {timeout:.0f} s")


def purge_queues() -> int:
    """Drop step tasks left on the broker by an earlier cluster that was killed."""
    from bio_assets.app.celery_worker import celery_app

    return celery_app().control.purge() or 0


@contextmanager
def running_cluster(
    home: Path, *, workers: int = 2, database: str = DEFAULT_DATABASE, isolate: bool | None = None
) -> Iterator[Cluster]:
    """``workers`` Celery workers on stand-in hosts, and this process's environment pointed at them;
    everything stopped and removed afterwards."""
    prepare_instance(home, database)
    isolated = namespaces_available() if isolate is None else isolate
    hosts = create_hosts(workers, (RABBITMQ_PORT, POSTGRES_PORT), isolated=isolated)
    saved = dict(os.environ)
    started: list[Worker] = []
    try:
        os.environ.update({"DAGSTER_HOME": str(home), **services_environment("127.0.0.1", database)})
        purge_queues()
        logs = home / "cluster"
        logs.mkdir(exist_ok=True)
        for host in hosts:
            environment = {**os.environ, **services_environment(host.services_address, database)}
            log_path = logs / f"{host.name}.log"
            with open(log_path, "ab") as log:
                command = host.command([sys.executable, "-m", WORKER_MODULE, "--name", host.name])
                process = subprocess.Popen(
                    command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
                )
            started.append(Worker(host, process, log_path))
        wait_for_workers([w.name for w in started], timeout=180)
        yield Cluster(started, hosts, isolated, {k: v for k, v in os.environ.items() if saved.get(k) != v})
    finally:
        for worker in started:
            try:
                os.killpg(worker.process.pid, signal.SIGTERM)
                worker.process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                worker.kill()
        remove_hosts(hosts)
        os.environ.clear()
        os.environ.update(saved)


def step_hosts(instance: dg.DagsterInstance, run_ids: list[str]) -> list[tuple[str, str, str]]:
    """(run id, step key, worker) for every step a Celery worker took, in order."""
    rows = []
    for run_id in run_ids:
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            event = record.dagster_event
            metadata = event.engine_event_data.metadata if event is not None and event.engine_event_data else {}
            if WORKER_FIELD in metadata:
                rows.append((run_id, event.step_key or "?", str(metadata[WORKER_FIELD].value)))
    return rows


def runs_since(instance: dg.DagsterInstance, started: float) -> list[dg.DagsterRun]:
    """The runs created since ``started`` (epoch seconds), oldest first."""
    after = datetime.datetime.fromtimestamp(started, tz=datetime.timezone.utc)
    records = instance.get_run_records(filters=dg.RunsFilter(created_after=after))
    return [r.dagster_run for r in sorted(records, key=lambda r: r.create_timestamp)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bio_assets.app.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--select", default="", help=f"default: {DEFAULT_SELECTION}")
    args = parser.parse_args(argv)
    from bio_assets.app.cli import main as cli_main
    from bio_assets.app.driver import dagster_home

    home = dagster_home()
    folder = os.environ.get("BIO_ASSETS_DATASET_DIR")
    name = "demo" if folder is None else None
    started = time.time()
    clock = time.perf_counter()
    with running_cluster(home, workers=args.workers, database=args.database) as cluster:
        where = "network namespaces" if cluster.isolated else "plain processes (no ip netns here)"
        print(
            f"cluster: {len(cluster.workers)} Celery workers on {where}: {', '.join(w.name for w in cluster.workers)}"
        )
        dataset = ["--dataset", folder] if folder else ["--name", "demo"]
        entry_name = name or Path(folder).name.lower().replace("-", "_").replace(" ", "_")
        select = args.select or DEFAULT_SELECTION.format(name=entry_name)
        code = cli_main(["materialize", *dataset, "--profile", args.profile, "--select", select])
        with dg.DagsterInstance.get() as instance:
            rows = step_hosts(instance, [r.run_id for r in runs_since(instance, started)])
        print("\nstep                                         run       host")
        for run_id, step, worker in rows:
            print(f"{step:<44} {run_id[:8]}  {worker}")
        hosts_used = sorted({worker for _, _, worker in rows})
        print(f"\n{len(rows)} steps on {len(hosts_used)} host(s): {', '.join(hosts_used)}")
    print(f"cluster-demo wall time {time.perf_counter() - clock:.1f} s (workers stopped, hosts removed)")
    if code == 0 and not rows:
        print("cluster-demo: no step ran on a Celery worker", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
