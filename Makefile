# bio-assets: `make demo` and `make test` work from a fresh clone with nothing installed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install lock demo ui cluster-demo image container-demo test test-fast lint format bench gpu-smoke fuzz clean-instance

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependencies change: exactly the files requirements.lock pins, each checked
# against its SHA-256, then the project itself as an editable install (no further resolution);
# pip check fails when the lock no longer satisfies pyproject.toml (run make lock).
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e '.[test,cluster]'
	$(BIN)/python -m pip check
	touch $@

install: $(STAMP)

## lock: re-resolve pyproject.toml's dependencies into requirements.lock (versions and hashes)
lock: $(BIN)/python
	$(BIN)/python deploy/lock_requirements.py requirements.lock $(if $(KEEP),--keep)
	$(BIN)/python deploy/lock_requirements.py --production

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## demo: materialize every asset of the embedded demo dataset into .dagster_home, print a summary
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/bio-assets materialize --profile demo

## ui: the Dagster UI and daemon (backfills, sensors, automation) on the same instance; Ctrl-C stops both
ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/bio-assets ui --port 3000

## image: the production image (deploy/Dockerfile) with podman, on a Debian base built by debootstrap
## (no registry image is pulled); needs root and `apt-get install podman runc buildah debootstrap`
image:
	bash deploy/image.sh $(IMAGE)

## container-demo: the deployment as containers of that image (code server, webserver, daemon, a Celery
## worker) with this machine's PostgreSQL and RabbitMQ: the demo's data group and CNN search, the worker
## of each step printed, everything it started stopped (run `make image` first)
container-demo: install
	$(BIN)/python -m bio_assets.app.container_demo $(if $(IMAGE),--image $(IMAGE))

## cluster-demo: the data group and CNN search of BIO_ASSETS_DATASET_DIR (default: the demo data) on
## Celery workers on stand-in hosts (network namespaces where possible), instance and catalog on
## PostgreSQL, broker RabbitMQ (both on 127.0.0.1); prints the host of each step, stops what it started
cluster-demo: install
	DAGSTER_HOME=$(CURDIR)/.dagster_cluster $(BIN)/python -m bio_assets.app.cluster

# Test workers and the service tests' runs share the cores: each worker, and each process it starts,
# computes on one thread (tests/conftest.py).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q --durations=15

E2E_LOG := .pytest-e2e.log

## test: the whole suite, CPU only, offline. The e2e tests (the real service; they mostly wait on
## daemon ticks and run start-up) run on 2 workers of their own beside the rest on TEST_WORKERS.
test: install
	@$(PYTEST) -n 2 -m e2e > $(E2E_LOG) 2>&1 & e2e=$$!; \
	$(PYTEST) -n $(TEST_WORKERS) -m "not e2e"; rest=$$?; \
	wait $$e2e; e2e_status=$$?; echo "--- e2e tests (the service):"; cat $(E2E_LOG); \
	test $$rest -eq 0 -a $$e2e_status -eq 0

## test-fast: everything but the tests marked slow
test-fast: install
	$(PYTEST) -n 2 -m "not slow"

## lint: ruff's lint rules and formatting, as CI checks them
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## format: apply ruff's formatting and safe fixes
format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: benchmarks, each ours against a reference in the same run; BENCH_JSON=file also writes JSON
bench: install
	$(BIN)/python -m bench $(if $(BENCH_JSON),--json $(BENCH_JSON))

## gpu-smoke: the CUDA paths and the CUDA bench entries on one GPU (under 5 minutes); CI has no GPU
gpu-smoke: install
	$(BIN)/python -m bench.gpu_smoke
	$(BIN)/python -m pytest -q tests/test_cuda_smoke.py

## fuzz: each fuzz target (image decoder, genotype parsers) for FUZZ_SECONDS seconds; crashing inputs go to .fuzz/
FUZZ_SECONDS ?= 60
fuzz: install
	$(BIN)/python -m tests.fuzz.fuzz_decoder --seconds $(FUZZ_SECONDS)
	$(BIN)/python -m tests.fuzz.fuzz_genotypes --seconds $(FUZZ_SECONDS)

clean-instance:
	rm -rf $(DAGSTER_HOME) $(CURDIR)/.dagster_cluster
