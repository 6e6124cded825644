"""The production files in deploy/, checked as far as a machine without Docker, Helm or a cluster allows.

- ``deploy/dagster.yaml`` passes Dagster's own instance-config validation (``dagster_instance_config``,
  with stand-in values for its environment variables), and every class it names (PostgreSQL storage,
  queued run coordinator, compute log manager, K8sRunLauncher) imports and accepts its config.
- The instance settings in ``deploy/helm/values.yaml``, rendered the way the chart renders them
  (camelCase keys to snake_case), pass the same validation and equal ``deploy/dagster.yaml``'s.
- The GPU mapping in the Helm values is keyed by ``NETWORK_TAGS`` of ``bio_assets/assets/common.py`` (a
  renamed tag breaks this test), requests and limits as many ``nvidia.com/gpu`` as the tag says, and
  selects and tolerates GPU nodes; with dagster-k8s it passes dagster-k8s's tag schema and builds the
  Kubernetes Job of a GPU step (GPU, shared volume, catalog secret) and of a data step (no GPU).
- ``deploy/Dockerfile`` starts from python:3.11-slim, installs pyproject.toml's pinned dependencies from
  PyPI plus the matching dagster-k8s, runs as the non-root uid the Helm values expect, sets no
  ENTRYPOINT and no secret, and serves the module the Helm values name on the port they use.
- With ``helm`` on PATH and ``BIO_ASSETS_DAGSTER_CHART`` naming the dagster chart 1.13.27 (a .tgz or
  folder), ``helm template`` validates the values against the chart's values.schema.json and the
  rendered dagster.yaml passes Dagster's validation; otherwise that test is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, validate_config
from dagster._core.instance.config import (
    dagster_instance_config,
    dagster_instance_config_schema,
    validate_concurrency_config,
)

from bio_assets.assets.common import NETWORK_TAGS

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
INSTANCE_YAML = DEPLOY / "dagster.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
GPU = "nvidia.com/gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"

# Stand-ins for the environment variables deploy/dagster.yaml reads (set by the chart or the operator).
INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "postgres.bio-assets.svc",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "stand-in",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_K8S_PIPELINE_RUN_NAMESPACE": "bio-assets",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "bio-assets-dagster-instance",
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
    "DAGSTER_K8S_SERVICE_ACCOUNT": "bio-assets-dagster",
}


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def instance_env(monkeypatch):
    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def values() -> dict:
    return load_yaml(HELM_VALUES)


@pytest.fixture(scope="module")
def deployment(values) -> dict:
    deployments = values["dagster-user-deployments"]["deployments"]
    assert [d["name"] for d in deployments] == ["bio-assets"]
    return deployments[0]


def env_of(deployment: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in deployment["env"]}


def gpu_mapping(deployment: dict) -> dict:
    return yaml.safe_load(env_of(deployment)["BIO_ASSETS_K8S_TAG_CONFIG"])


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def snake_keys(value):
    """The chart's rendering of an instance section: camelCase keys become dagster.yaml's snake_case."""
    if isinstance(value, dict):
        return {snake(key): snake_keys(item) for key, item in value.items()}
    return value


def helm_instance_sections(values: dict) -> dict:
    """The dagster.yaml sections the chart renders from our values (the parts these values set)."""
    daemon = values["dagsterDaemon"]
    concurrency = {k: v for k, v in values["concurrency"].items() if k != "enabled"}
    retention = {k: v for k, v in values["retention"].items() if k != "enabled"}
    return {
        "run_monitoring": snake_keys(daemon["runMonitoring"]),
        "run_retries": snake_keys(daemon["runRetries"]),
        "concurrency": snake_keys(concurrency),
        "retention": snake_keys(retention),
        "telemetry": values["telemetry"],
    }


def test_instance_yaml_passes_dagsters_instance_validation(tmp_path, instance_env):
    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    config, custom_instance_class = dagster_instance_config(str(tmp_path))
    assert custom_instance_class is None
    assert set(config["storage"]) == {"postgres"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False  # crash-only retries
    assert config["concurrency"]["pools"]["default_limit"] >= 1


def test_instance_storage_reads_postgres_settings_from_the_environment(instance_env):
    from dagster_postgres import DagsterPostgresStorage

    storage = load_yaml(INSTANCE_YAML)["storage"]["postgres"]
    result = process_config(DagsterPostgresStorage.config_type(), storage)
    assert result.success, result.errors
    resolved = result.value["postgres_db"]
    assert resolved["hostname"] == INSTANCE_ENV["DAGSTER_PG_HOST"]
    assert resolved["port"] == 5432
    assert resolved["password"] == INSTANCE_ENV["DAGSTER_PG_PASSWORD"]


@pytest.mark.parametrize("section", ["run_coordinator", "compute_logs", "run_launcher"])
def test_instance_classes_import_and_accept_their_config(section, instance_env):
    entry = load_yaml(INSTANCE_YAML)[section]
    if entry["module"] == "dagster_k8s":
        pytest.importorskip("dagster_k8s", reason="K8sRunLauncher's config schema needs dagster-k8s")
    from dagster._serdes import class_from_code_pointer  # how the instance resolves `module` and `class`

    cls = class_from_code_pointer(entry["module"], entry["class"])
    result = process_config(cls.config_type(), entry.get("config", {}))
    assert result.success, result.errors


def test_helm_instance_settings_are_valid_and_equal_the_instance_yaml(values):
    sections = helm_instance_sections(values)
    rendered = {
        **sections,
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"},
    }
    validate_concurrency_config(rendered)
    result = validate_config(dagster_instance_config_schema(), rendered)
    assert result.success, result.errors
    instance = load_yaml(INSTANCE_YAML)
    for name, section in sections.items():
        assert section == instance[name], f"{name}: Helm values and deploy/dagster.yaml disagree"
    assert values["concurrency"]["enabled"] is True
    assert values["dagsterDaemon"]["runCoordinator"] == {"enabled": True, "type": "QueuedRunCoordinator"}


def test_helm_run_launcher_and_storage_match_the_instance_yaml(values):
    instance = load_yaml(INSTANCE_YAML)
    launcher = values["runLauncher"]
    assert launcher["type"] == instance["run_launcher"]["class"] == "K8sRunLauncher"
    k8s = snake_keys(launcher["config"]["k8sRunLauncher"])
    for key, value in k8s.items():
        if key != "load_incluster_config":
            assert instance["run_launcher"]["config"][key] == value, key
    assert values["computeLogManager"]["type"] == instance["compute_logs"]["class"]
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert postgresql["postgresqlPassword"] == "", "the password belongs in a Secret, not in the values"
    assert values["global"]["postgresqlSecretName"] == INSTANCE_ENV["DAGSTER_K8S_PG_PASSWORD_SECRET"]


def test_gpu_mapping_is_keyed_by_the_accelerator_declaration(deployment):
    mapping = gpu_mapping(deployment)
    assert set(mapping) == set(NETWORK_TAGS), "BIO_ASSETS_K8S_TAG_CONFIG must name the tags NETWORK_TAGS sets"
    for tag, count in NETWORK_TAGS.items():
        resources = mapping[tag]["container_config"]["resources"]
        assert resources["requests"][GPU] == resources["limits"][GPU] == count
        pod = mapping[tag]["pod_spec_config"]
        assert pod["node_selector"], "GPU steps must select GPU nodes"
        assert any(t["key"] == GPU and t["effect"] == "NoSchedule" for t in pod["tolerations"])
    assert env_of(deployment)["BIO_ASSETS_STEP_EXECUTOR"] == "k8s"


def test_nothing_but_gpu_steps_asks_for_a_gpu(values, deployment):
    """Run pods and data steps get the code location's base resources, which hold no GPU."""
    assert GPU not in json.dumps(deployment["resources"])
    assert GPU not in json.dumps(values["runLauncher"])
    assert GPU not in json.dumps(load_yaml(INSTANCE_YAML)["run_launcher"])


def test_shared_volume_holds_bio_assets_home(deployment):
    mounts = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    home = env_of(deployment)["BIO_ASSETS_HOME"]
    assert mounts["bio-assets-home"] == home and "bio-assets-home" in claims
    assert env_of(deployment)["BIO_ASSETS_REGISTRY"].startswith(home + "/")
    assert {"name": "bio-assets-catalog"} in deployment["envSecrets"]
    instance_mounts = load_yaml(INSTANCE_YAML)["run_launcher"]["config"]["volume_mounts"]
    assert [m["mount_path"] for m in instance_mounts] == [home]


def step_job(deployment: dict, tags: dict[str, str]):
    """The Kubernetes Job dagster-k8s builds for a step with ``tags``, launched from our code location
    (its container context as the chart passes it: env, secrets, volume, resources)."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    location = K8sContainerContext.create_from_config(
        {
            "k8s": {
                "env": deployment["env"],
                "env_secrets": [s["name"] for s in deployment["envSecrets"]],
                "volumes": deployment["volumes"],
                "volume_mounts": deployment["volumeMounts"],
                "resources": deployment["resources"],
            }
        }
    )
    step = location.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))
    job_config = DagsterK8sJobConfig(
        job_image="registry.example.org/bio-assets:test",
        dagster_home=INSTANCE_ENV["DAGSTER_HOME"],
        instance_config_map=INSTANCE_ENV["DAGSTER_K8S_INSTANCE_CONFIG_MAP"],
        postgres_password_secret=INSTANCE_ENV["DAGSTER_K8S_PG_PASSWORD_SECRET"],
    )
    args = ["dagster", "api", "execute_step"]
    return construct_dagster_k8s_job(job_config, args, "dagster-step-test", user_defined_k8s_config=step.run_k8s_config)


def test_gpu_step_job_requests_its_gpu_on_a_gpu_node(deployment):
    pytest.importorskip("dagster_k8s", reason="building the step's Kubernetes Job needs dagster-k8s")
    mapping = gpu_mapping(deployment)
    tags = {**NETWORK_TAGS, K8S_CONFIG_TAG: json.dumps(mapping["bio_assets/accelerator"])}
    pod = step_job(deployment, tags).spec.template.spec
    container = pod.containers[0]
    count = NETWORK_TAGS["bio_assets/accelerator"]
    assert container.resources.requests[GPU] == container.resources.limits[GPU] == count
    assert container.resources.requests["memory"] == "24Gi"  # the step's own size, over the base
    assert pod.node_selector == mapping["bio_assets/accelerator"]["pod_spec_config"]["node_selector"]
    assert [t.key for t in pod.tolerations] == [GPU]
    mounts = {m.mount_path for m in container.volume_mounts}
    assert {env_of(deployment)["BIO_ASSETS_HOME"], "/dev/shm"} <= mounts
    assert {"bio-assets-catalog"} <= {e.secret_ref.name for e in container.env_from if e.secret_ref}


def test_the_code_location_under_the_charts_environment_uses_the_k8s_executor_and_tags_gpu_steps(
    deployment, tiny_dataset, monkeypatch
):
    """With the deployment's environment the code location itself does what the chart expects: the
    k8s_job_executor, the GPU pod config on every network step (and on nothing else), one retry."""
    pytest.importorskip("dagster_k8s", reason="the k8s step executor needs dagster-k8s")
    import dagster as dg
    from dagster_k8s import k8s_job_executor

    from bio_assets.core.registry import DatasetEntry
    from bio_assets.definitions import build_definitions
    from jobs.executors import step_executor

    environment = env_of(deployment)
    for name in ("BIO_ASSETS_STEP_EXECUTOR", "BIO_ASSETS_K8S_TAG_CONFIG"):
        monkeypatch.setenv(name, environment[name])
    assert step_executor() is k8s_job_executor
    defs = build_definitions([DatasetEntry("tiny", str(tiny_dataset), profile="demo")])
    graph = defs.resolve_asset_graph()
    expected = gpu_mapping(deployment)["bio_assets/accelerator"]
    tagged = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assets_def = node.assets_def
        tags = assets_def.op.tags
        tagged[key.path[-1]] = K8S_CONFIG_TAG in tags
        if "bio_assets/accelerator" in tags:
            assert json.loads(tags[K8S_CONFIG_TAG]) == expected
            assert assets_def.op.retry_policy == dg.RetryPolicy(max_retries=1)
        else:
            assert K8S_CONFIG_TAG not in tags and assets_def.op.retry_policy is None
    assert tagged["searched_cell"] and tagged["trained_gan"] and not tagged["raw_images"]


def test_data_step_job_gets_no_gpu(deployment):
    pytest.importorskip("dagster_k8s", reason="building the step's Kubernetes Job needs dagster-k8s")
    pod = step_job(deployment, {}).spec.template.spec
    assert GPU not in (pod.containers[0].resources.limits or {})
    assert not pod.tolerations and not pod.node_selector


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in joined.splitlines() if ln.strip()]


def test_dockerfile_installs_the_project_and_serves_the_location_helm_expects(deployment):
    instructions = dockerfile_instructions()
    by_kind: dict[str, list[str]] = {}
    for kind, arguments in instructions:
        by_kind.setdefault(kind, []).append(arguments)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # python:3.11-slim by default; `make image` passes the Debian base it builds (deploy/image.sh).
    assert by_kind["FROM"] == ["${BASE_IMAGE}"] and "BASE_IMAGE=python:3.11-slim" in by_kind["ARG"]
    assert 'BASE_IMAGE="$base"' in (ROOT / "deploy" / "image.sh").read_text()
    # Dependencies: exactly the production lock's files, hash-checked, from PyPI's default index.
    assert any("pip install --require-hashes --no-deps -r requirements-production.lock" in a for a in by_kind["RUN"])
    assert not re.search(r"--(extra-)?index-url", DOCKERFILE.read_text())
    copied = {shlex.split(a)[0] for a in by_kind["COPY"]}
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert copied >= {"pyproject.toml", "deploy/requirements-production.lock", *packages}
    assert any(re.search(r"pip install --no-deps --no-build-isolation \.( |$)", a) for a in by_kind["RUN"])
    # Non-root, the uid the pod security context expects; no ENTRYPOINT under the chart's `args:`.
    security = deployment["podSecurityContext"]
    assert by_kind["USER"] == [f"{security['runAsUser']}:{security['runAsGroup']}"] and security["runAsNonRoot"]
    assert "ENTRYPOINT" not in by_kind
    cmd = json.loads(by_kind["CMD"][-1])
    module = pyproject["tool"]["dagster"]["module_name"]
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") + 1] == module == deployment["codeServerArgs"][1]
    assert int(cmd[cmd.index("-p") + 1]) == deployment["port"] == int(by_kind["EXPOSE"][0])
    home = env_of(deployment)["BIO_ASSETS_HOME"]
    assert any(f"BIO_ASSETS_HOME={home}" in a for a in by_kind["ENV"])


def test_production_runs_the_daemon_development_runs(values, deployment):
    """The chart's daemon pod runs `dagster-daemon` from the bio-assets image, where that command is
    bio-assets' daemon: the one `bio-assets ui` starts, with the same fixes."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["bio-assets-daemon"] == "bio_assets.app.daemon:main"
    assert values["dagsterDaemon"]["image"] == deployment["image"]
    runs = [a for kind, a in dockerfile_instructions() if kind == "RUN"]
    assert any('ln -sf "$(command -v bio-assets-daemon)" "$(command -v dagster-daemon)"' in a for a in runs)


def locked(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (version, sha256) of a lock file."""
    pattern = r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n\s+--hash=sha256:([0-9a-f]{64})"
    return {m[0].lower(): (m[1], m[2]) for m in re.findall(pattern, path.read_text(), re.M)}


def test_the_production_lock_is_the_development_lock_without_the_test_tools():
    development = locked(ROOT / "requirements.lock")
    production = locked(ROOT / "deploy" / "requirements-production.lock")
    assert production and all(development.get(name) == pin for name, pin in production.items())
    assert {"dagster", "torch", "dagster-k8s", "dagster-celery", "setuptools"} <= set(production)
    assert not {"pytest", "pytest-xdist", "ruff", "atheris"} & set(production)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in pyproject["dependencies"]:  # every pinned base dependency, at its pin
        name, _, version = requirement.partition("==")
        if version:
            assert production[name.lower()][0] == version, name


def test_dockerfile_bakes_in_no_secret():
    for kind, arguments in dockerfile_instructions():
        if kind in {"ENV", "ARG"}:
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arguments)
            assert not [n for n in names if re.search(r"PASSWORD|SECRET|TOKEN|CATALOG_URL", n)], arguments


def test_helm_template_renders_a_valid_instance(tmp_path, instance_env):
    helm, chart = shutil.which("helm"), os.environ.get("BIO_ASSETS_DAGSTER_CHART")
    if not (helm and chart):
        pytest.skip(
            "needs `helm` and BIO_ASSETS_DAGSTER_CHART (e.g. the file from `helm pull dagster/dagster --version "
            "1.13.27`): the chart's values.schema.json for 1.13.27 is not available offline"
        )
    command = [helm, "template", "bio-assets", chart, "--values", str(HELM_VALUES)]
    rendered = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    config_maps = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "ConfigMap"]
    instance = next(d for d in config_maps if d["metadata"]["name"].endswith("-instance"))
    (tmp_path / "dagster.yaml").write_text(instance["data"]["dagster.yaml"])
    config, _ = dagster_instance_config(str(tmp_path))
    for name, section in helm_instance_sections(load_yaml(HELM_VALUES)).items():
        shown = {key: config[name].get(key) for key in section}
        assert shown == section, f"the chart rendered {name} as {config[name]}"
    assert config["run_launcher"]["class"] == "K8sRunLauncher"


def test_production_starts_with_sensors_stopped_and_refuses_to_start_without_a_registry(tmp_path, monkeypatch):
    import dagster as dg

    from bio_assets.definitions import load_definitions

    assert any("BIO_ASSETS_PRODUCTION=1" in a for kind, a in dockerfile_instructions() if kind == "ENV")
    monkeypatch.setenv("BIO_ASSETS_PRODUCTION", "1")
    with pytest.raises(FileNotFoundError, match=f"no dataset registry at {tmp_path / 'missing.yaml'}"):
        load_definitions(tmp_path / "missing.yaml")
    registry = tmp_path / "datasets.yaml"
    registry.write_text("datasets:\n  - {name: cells, folder: /data/cells, profile: demo}\n")
    sensors = load_definitions(registry).sensors
    assert sensors and {s.default_status for s in sensors} == {dg.DefaultSensorStatus.STOPPED}
    monkeypatch.setenv("BIO_ASSETS_PRODUCTION", "0")  # development: the demo without a registry, sensors on
    development = load_definitions(tmp_path / "missing.yaml")
    assert {s.default_status for s in development.sensors} == {dg.DefaultSensorStatus.RUNNING}
