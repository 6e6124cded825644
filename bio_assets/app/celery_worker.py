"""``bio-assets worker``: a Celery worker that executes Dagster steps sent by runs whose executor is
``celery`` (``BIO_ASSETS_STEP_EXECUTOR=celery``, ``jobs/executors.py``).

It reads the same ``BIO_ASSETS_CELERY_*`` settings as the executor, consumes the named queues
(``gpu``: steps that run a network, ``cpu``: the rest) one step at a time, each step in a fresh
child process, and acknowledges a step only when it has ended, so the broker gives the step of a
worker that died to another one. On a GPU host start one worker per GPU, each with
``CUDA_VISIBLE_DEVICES`` set to its GPU and ``--queues gpu``.

The host needs what the run's steps need: this package, ``DAGSTER_HOME`` is not required (the
instance comes with each task), the dataset folders, the data home (``BIO_ASSETS_HOME``: search
state, checkpoints, catalog) and the storage (``BIO_ASSETS_STORAGE``) at the same paths as the
other hosts: a shared mount.
"""

from __future__ import annotations

import argparse
import socket

from jobs.executors import broker_settings


def celery_app():
    """The Celery app of the step executor, with its task registered, as the executor builds it."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    settings = broker_settings()
    executor = CeleryExecutor.for_cli(
        broker=settings["broker"], backend=settings["backend"], config_source=settings["config_source"]
    )
    app = make_app(executor.app_args())
    create_task(app)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bio-assets worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", default="gpu,cpu", help="comma-separated queues to consume (default gpu,cpu)")
    parser.add_argument("--name", default=socket.gethostname(), help="worker name shown in the step's events")
    parser.add_argument("--concurrency", type=int, default=1, help="steps run at once (default 1)")
    args = parser.parse_args(argv)
    # Each step runs in a fresh child forked from this process: importing the libraries and the asset
    # code here once saves every step their import (seconds). The definitions themselves (which read
    # the dataset registry) are loaded by each step, so a registry change reaches the next step.
    import jobs.pipelines  # noqa: F401  (torch, torchvision, dagster and every asset module)

    app = celery_app()
    app.worker_main(
        [
            "worker", "--queues", args.queues, "--hostname", f"{args.name}@%h", "--concurrency",
            str(args.concurrency), "--pool", "prefork", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
        ]
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
