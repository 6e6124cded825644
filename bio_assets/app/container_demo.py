"""``make container-demo`` (``python -m bio_assets.app.container_demo``): the deployment as containers.

From the production image (``make image``): the code server, the webserver, the daemon and one Celery
worker, each a container on the host network, with this machine's PostgreSQL (instance, catalog) and
RabbitMQ (steps), and one data folder shared by all of them as the image's uid 10001. The demo dataset's
data group and CNN search are materialized by one asset backfill launched on the containers'
webserver, as the UI's Materialize does; each step's worker is printed; everything it started is
stopped and its database dropped, also when it fails. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg

from bio_assets.app.cluster import CLUSTER_CONFIG, ensure_database, services_environment, step_hosts
from bio_assets.app.service import free_port, loaded_locations
from bio_assets.app.summary import run_failures
from bio_assets.app.webserver import FINISHED_BACKFILL_STATES, DagsterWebserver
from bio_assets.assets.common import PROFILE_TAG

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
# Podman here cannot raise its own limits without these. Every container runs on the host network, and
# in the host's process namespace: run monitoring (HealthCheckedRunLauncher, in the daemon) checks the run
# workers that the code server started by their pids, which another namespace would not show.
RUN_FLAGS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096", "--network", "host", "--pid", "host"]
IMAGE_UID = 10001
WORKER_HOST = "container-worker"
SELECTION = ["raw_images", "image_splits", "augmented_dataset", "searched_cell", "macro_architecture"]


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN, *args], check=check, capture_output=True, text=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(2)


class Deployment:
    """The four containers of one demo, their shared files and their database."""

    def __init__(self, image: str, folder: Path, database: str) -> None:
        self.image, self.folder, self.database = image, folder, database
        self.code_port, self.web_port = free_port(), free_port()
        self.names: list[str] = []
        self.environment = {
            **services_environment("127.0.0.1", database),
            "DAGSTER_HOME": "/opt/dagster/dagster_home",
            "BIO_ASSETS_REGISTRY": "/opt/dagster/datasets.yaml",
        }

    def prepare(self) -> None:
        home, data = self.folder / "dagster_home", self.folder / "data"
        home.mkdir()
        data.mkdir()
        shutil.copyfile(CLUSTER_CONFIG, home / "dagster.yaml")
        (self.folder / "datasets.yaml").write_text(
            "datasets:\n  - {name: demo, folder: 'builtin:demo', profile: demo}\n"
        )
        workspace = {
            "load_from": [{"grpc_server": {"host": "localhost", "port": self.code_port, "location_name": "bio_assets"}}]
        }
        (self.folder / "workspace.yaml").write_text(json.dumps(workspace))
        for path in (home, data):
            os.chown(path, IMAGE_UID, IMAGE_UID)
        ensure_database(self.database)

    def _mounts(self) -> list[str]:
        f = self.folder
        return [
            "-v", f"{f / 'dagster_home'}:/opt/dagster/dagster_home", "-v", f"{f / 'data'}:/var/lib/bio-assets",
            "-v", f"{f / 'datasets.yaml'}:/opt/dagster/datasets.yaml:ro",
            "-v", f"{f / 'workspace.yaml'}:/opt/dagster/workspace.yaml:ro",
        ]  # fmt: skip

    def start(self, name: str, *command: str, hostname: str | None = None) -> None:
        env = [a for k, v in self.environment.items() for a in ("-e", f"{k}={v}")]
        host = ["--hostname", hostname] if hostname else []
        podman("run", "-d", "--name", name, "--no-healthcheck", *RUN_FLAGS, *host, *env, *self._mounts(),
               self.image, *command)  # fmt: skip
        self.names.append(name)

    def run_once(self, *command: str) -> str:
        env = [a for k, v in self.environment.items() for a in ("-e", f"{k}={v}")]
        return podman("run", "--rm", "--no-healthcheck", *RUN_FLAGS, *env, *self._mounts(), self.image, *command).stdout

    def logs(self) -> str:
        return "\n".join(f"--- {n}:\n{podman('logs', '--tail', '20', n, check=False).stderr}" for n in self.names)

    def stop(self) -> None:
        if self.names:
            podman("rm", "-f", "-t", "10", *self.names, check=False)
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bio_assets.app.container_demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--image", default="localhost/bio-assets:0.1.0")
    parser.add_argument("--profile", default="demo")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("container-demo: run it as root (the shared folder belongs to the image's uid 10001)", file=sys.stderr)
        return 2
    if shutil.which("podman") is None:
        print("container-demo: podman is missing: apt-get install -y podman runc buildah debootstrap", file=sys.stderr)
        return 2
    if podman("image", "exists", args.image, check=False).returncode != 0:
        print(f"container-demo: no image {args.image}: run `make image` first", file=sys.stderr)
        return 2
    clock = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="bio-assets-containers-"))
    folder.chmod(0o755)
    deployment = Deployment(args.image, folder, f"bio_assets_containers_{uuid.uuid4().hex[:8]}")
    try:
        deployment.prepare()
        # The demo images, generated once into the shared folder by the image's user; their classes.
        classes = json.loads(deployment.run_once("python", "-c", "import json; from resources.image_dataset import "
                                                 "ImageDatasetResource as R; print(json.dumps(sorted(R().layout('demo')"
                                                 ".class_folders())))").strip().splitlines()[-1])  # fmt: skip
        code_server = ["dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(deployment.code_port)]
        deployment.start(
            "bio-code-server", *code_server, "-m", "bio_assets.definitions", "--location-name", "bio_assets"
        )
        deployment.start("bio-worker", "bio-assets", "worker", "--queues", "gpu,cpu", "--name", WORKER_HOST,
                         hostname=WORKER_HOST)  # fmt: skip
        deployment.start("bio-webserver", "dagster-webserver", "-h", "127.0.0.1", "-p", str(deployment.web_port),
                         "-w", "/opt/dagster/workspace.yaml")  # fmt: skip
        deployment.start("bio-daemon", "dagster-daemon", "run", "-w", "/opt/dagster/workspace.yaml")
        url = f"http://127.0.0.1:{deployment.web_port}"
        web = DagsterWebserver(url, timeout=10)
        wait_for(lambda: loaded_locations(url), 300, "the webserver serving the loaded code location")
        print(f"containers: {', '.join(deployment.names)} from {args.image}; UI at {url}", flush=True)
        os.environ.update({k: v for k, v in deployment.environment.items() if k != "DAGSTER_HOME"})
        host_home = folder / "host_home"  # this process reads the same instance (PostgreSQL) to follow it
        host_home.mkdir()
        shutil.copyfile(CLUSTER_CONFIG, host_home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(host_home)
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("demo__classes", classes)
            keys = [dg.AssetKey(["demo", name]) for name in SELECTION]
            backfill = web.launch_backfill(
                keys, partitions=None, tags={PROFILE_TAG: args.profile}, title="container-demo"
            )
            print(f"== backfill {backfill}: {len(keys)} assets of 'demo', {len(classes)} classes", flush=True)
            wait_for(lambda: web.backfill_status(backfill) in FINISHED_BACKFILL_STATES, 1800, "the backfill")
            status = web.backfill_status(backfill)
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill}))
            rows = step_hosts(instance, [r.run_id for r in runs])
            for failure in run_failures(instance, runs, "demo"):
                print(f"failed: {failure}", file=sys.stderr)
        print("\nstep                                         run       worker")
        for run_id, step, worker in rows:
            print(f"{step:<44} {run_id[:8]}  {worker}")
        failed = [r.run_id[:8] for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        print(f"\nbackfill {status}; {len(runs)} runs, failed: {failed or 'none'}; {len(rows)} steps on the worker")
        ok = status == "COMPLETED_SUCCESS" and not failed and rows and all(w.startswith(WORKER_HOST) for *_, w in rows)
        if not ok:
            print(deployment.logs(), file=sys.stderr)
        return 0 if ok else 1
    finally:
        deployment.stop()
        shutil.rmtree(folder, ignore_errors=True)
        print(f"container-demo wall time {time.perf_counter() - clock:.1f} s (containers removed, database dropped)")


if __name__ == "__main__":
    raise SystemExit(main())
