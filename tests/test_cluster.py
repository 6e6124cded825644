"""The cluster path for real: two Celery workers (``bio-assets worker``) on stand-in hosts (network
namespaces where ``ip netns`` works), RabbitMQ as the broker, PostgreSQL for the instance and the
catalog. ``bio-assets materialize`` runs the data group and the cell search through them; one worker
is SIGKILLed in the middle of the search step, and the step completes on the other worker, resuming
the evaluations the first one had saved."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from bio_assets.app.cluster import running_cluster, runs_since, step_hosts
from bio_assets.core.registry import load_registry, save_registry
from tests.conftest import POSTGRES_SERVER, TINY_SEARCH, service_stopped, wait_for

ROOT = Path(__file__).resolve().parents[1]
SEARCH_STEP = "tiny__searched_cell"

pytestmark = [pytest.mark.e2e, pytest.mark.slow(seconds=200)]


def evaluation_times(instance: dg.DagsterInstance, run_id: str) -> list[float]:
    """When the search logged each candidate evaluation ("[k/N] <code>: val acc ...")."""
    return [
        e.timestamp for e in instance.all_logs(run_id) if e.user_message.startswith("[") and "val acc" in e.user_message
    ]


@pytest.fixture
def cluster_database():
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"bio_assets_cluster_{uuid.uuid4().hex[:8]}"
    yield name
    admin = psycopg2.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_steps_run_on_celery_workers_and_a_killed_workers_step_completes_on_another(service_home, cluster_database):
    registry = Path(os.environ["BIO_ASSETS_REGISTRY"])
    (entry,) = load_registry(registry)
    slower = {**entry.settings, "searched_cell": {**TINY_SEARCH, "epochs": 25, "cycles": 2}}
    save_registry(registry, [replace(entry, settings=slower)])
    (service_home / "dagster.yaml").unlink()  # the cluster's own instance settings (PostgreSQL)
    started = time.time()
    with running_cluster(service_home, workers=2, database=cluster_database) as cluster:
        command = [sys.executable, "-m", "bio_assets.app.cli", "materialize", "--name", "tiny"]
        cli = subprocess.Popen(
            [*command, "--select", '+key:"tiny/searched_cell"'], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        with dg.DagsterInstance.get() as instance:

            def search_taken_after_an_evaluation():
                runs = [r.run_id for r in runs_since(instance, started)]
                taken = [row for row in step_hosts(instance, runs) if row[1] == SEARCH_STEP]
                return taken[0] if taken and evaluation_times(instance, taken[0][0]) else None

            run_id, _, first_host = wait_for(search_taken_after_an_evaluation, 900, "an evaluation of the search step")
            victim = next(w for w in cluster.workers if first_host.startswith(f"{w.name}@"))
            survivor = next(w for w in cluster.workers if w is not victim)
            victim.kill()  # the host dies in the middle of the step
            killed_at = time.time()
            output, _ = cli.communicate(timeout=600)
            assert cli.returncode == 0, output

            rows = step_hosts(instance, [r.run_id for r in runs_since(instance, started)])
            hosts = {worker.split("@")[0] for _, _, worker in rows}
            assert hosts <= {w.name for w in cluster.workers} and len(rows) >= 10  # every step on a worker
            search = [worker for rid, step, worker in rows if step == SEARCH_STEP and rid == run_id]
            assert search[0] == first_host and len(search) == 2 and not search[1].startswith(f"{victim.name}@")
            materialization = instance.get_latest_materialization_event(dg.AssetKey(["tiny", "searched_cell"]))
            assert materialization.run_id == run_id  # the same run finished the step: nothing was lost
            total = materialization.asset_materialization.metadata["num_evaluations"].value
            after_kill = [t for t in evaluation_times(instance, run_id) if t > killed_at]
            assert 0 < len(after_kill) < total  # evaluations saved before the kill were resumed, not repeated
            if cluster.isolated:  # each worker host has a network of its own, apart from this machine's
                assert os.stat(f"/proc/{survivor.process.pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    wait_for(lambda: service_stopped(service_home), 120, "the service the CLI started to stop once idle")
