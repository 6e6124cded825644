"""Where a run's steps execute, chosen by the deployment (environment), not by code.

``BIO_ASSETS_STEP_EXECUTOR``:
- ``in_process`` (default): every step in the run worker, one after another. A step process per
  step would cost a code-location load (seconds) per step, more than most data steps take, and
  trainings take turns anyway (the ``gpu`` pool).
- ``celery``: every step is a Celery task on RabbitMQ (Dagster's ``celery_executor``), run by
  ``bio-assets worker`` processes on any host that shares the instance (PostgreSQL), the storage
  and the data folders. Steps that run a network go to the ``gpu`` queue, the rest to ``cpu``
  (``bio_assets.assets.common.asset_options``: the declaration that also sets the ``gpu`` pool
  and the Kubernetes GPU requests). A worker that dies in the middle of a step loses nothing: the
  broker hands the unacknowledged task to another worker (late acknowledgement), which runs the
  step again and the step resumes from its state on the shared storage (search evaluations, GAN
  checkpoints).
- ``k8s``: every step in a Kubernetes pod of its own (``dagster_k8s.k8s_job_executor``); steps that
  run a network carry the ``dagster-k8s/config`` of ``BIO_ASSETS_K8S_TAG_CONFIG`` (their GPU
  request) and retry once, since a GPU pod lost with its node is a step failure to Dagster
  (``bio_assets.assets.common``; deploy/README.md).

Broker settings (``BIO_ASSETS_CELERY_*``) are read here and by the workers alike, so both sides
always agree; they default to the local RabbitMQ on loopback.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import dagster as dg

import jobs.pool_wait  # noqa: F401  (runs waiting for a pool slot sleep: a fix for Dagster 1.13.27)
from bio_assets.assets.common import CPU_QUEUE, EXECUTOR_ENV

EXECUTORS = ("in_process", "celery", "k8s")
BROKER_ENV = "BIO_ASSETS_CELERY_BROKER"
DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
BACKEND_ENV = "BIO_ASSETS_CELERY_BACKEND"
# TLS to the broker: the CA that signed its certificate, and this host's client certificate and key
# where the broker asks for them (RabbitMQ's ssl_options.verify = verify_peer).
TLS_ENV = {"ca_certs": "BIO_ASSETS_CELERY_TLS_CA", "certfile": "BIO_ASSETS_CELERY_TLS_CERT"}
TLS_KEY_ENV = "BIO_ASSETS_CELERY_TLS_KEY"
PLAINTEXT_ENV = "BIO_ASSETS_CELERY_ALLOW_PLAINTEXT"  # "1": a broker off this host without TLS
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def broker_settings(environment: Mapping[str, str] = os.environ) -> dict:
    """The broker URL, result backend and Celery settings both the executor and the workers use.

    ``ValueError`` for a broker off this host reached without TLS (``amqps://`` with a CA) unless
    ``BIO_ASSETS_CELERY_ALLOW_PLAINTEXT=1`` says the network between the hosts is private."""
    broker = environment.get(BROKER_ENV, DEFAULT_BROKER)
    parts = urlsplit(broker)
    tls = parts.scheme == "amqps"
    if tls and not environment.get(TLS_ENV["ca_certs"]):
        raise ValueError(f"broker {parts.scheme}://{parts.hostname}: TLS needs the CA file in {TLS_ENV['ca_certs']}")
    if not tls and parts.hostname not in LOOPBACK and environment.get(PLAINTEXT_ENV) != "1":
        raise ValueError(
            f"broker {parts.hostname}:{parts.port or 5672} is not on this host and the connection is not "
            f"encrypted: use amqps:// with {TLS_ENV['ca_certs']} (and a client certificate), or set "
            f"{PLAINTEXT_ENV}=1 on a private network"
        )
    settings: dict = {
        # Acknowledge a step's task when it ends, not when it starts, and give it back when the
        # worker process is lost: the broker then hands it to another worker.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # a worker holds only the step it runs
        "task_default_queue": CPU_QUEUE,
        "worker_max_tasks_per_child": 1,  # a fresh process per step: its memory and GPU context go with it
        "broker_connection_retry_on_startup": True,
    }
    if tls:
        options = {name: environment[var] for name, var in TLS_ENV.items() if environment.get(var)}
        if environment.get(TLS_KEY_ENV):
            options["keyfile"] = environment[TLS_KEY_ENV]
        settings["broker_use_ssl"] = {**options, "cert_reqs": int(ssl.CERT_REQUIRED)}
    return {"broker": broker, "backend": environment.get(BACKEND_ENV, "rpc://"), "config_source": settings}


def step_executor(environment: Mapping[str, str] = os.environ) -> dg.ExecutorDefinition:
    """The executor every job and backfill of the code location uses (``BIO_ASSETS_STEP_EXECUTOR``)."""
    kind = environment.get(EXECUTOR_ENV, "in_process")
    if kind not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={kind!r} is not one of {EXECUTORS}")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise ValueError(f"{EXECUTOR_ENV}=celery needs the cluster extra: pip install 'bio-assets[cluster]'") from None
    return celery_executor.configured(broker_settings(environment), name="celery")
