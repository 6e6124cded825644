"""One materialize() chain over the gan_search group with tiny settings on a tiny dataset."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from bio_assets.core.gan.genotypes import GanGenotype
from bio_assets.core.io.storage import load_weights
from tests.conftest import TINY_CLASSES as CLASSES

TINY_GAN = {"image_size": 32, "generator_width": 16, "discriminator_width": 8, "batch_size": 8}
TINY_SEARCH = {**TINY_GAN, "population_size": 2, "cycles": 1, "sample_size": 1, "epochs": 1, "fid_samples": 12}
TINY_RUN = {**TINY_GAN, "iterations": 4, "fid_every": 2, "checkpoint_every": 2, "fid_samples": 12}


@pytest.fixture
def prepared(tiny_instance):
    return tiny_instance


@pytest.mark.slow(seconds=17)
def test_gan_search_group_chain(tmp_path, prepared):
    defs, assets, instance = prepared
    run_config = {
        "ops": {
            "tiny__feature_extractors": {"config": {"biocnn1_epochs": 1, "biocnn2_epochs": 1, "width": 8}},
            "tiny__generator": {"config": TINY_SEARCH},
            "tiny__discriminator": {"config": TINY_SEARCH},
            "tiny__trained_gan": {"config": TINY_RUN},
        }
    }
    keys = [dg.AssetKey(["tiny", n]) for n in ("feature_extractors", "generator", "discriminator", "trained_gan")]
    result = dg.materialize(assets, instance=instance, resources=defs.resources, selection=keys, run_config=run_config)
    assert result.success
    metadata = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    extractors = metadata["feature_extractors"]
    assert 0.0 <= extractors["val_accuracy_biocnn1"].value <= 1.0 and extractors["feature_dim"].value == 64
    assert extractors["inception_v3"].value.startswith("skipped")
    generator = metadata["generator"]
    GanGenotype.parse(generator["genotype"].value, "generator")
    assert generator["num_evaluations"].value == 3 and generator["fid"].value > 0
    assert "data:image/png;base64," in generator["fitness_plot"].value
    discriminator = metadata["discriminator"]
    GanGenotype.parse(discriminator["genotype"].value, "discriminator")
    assert discriminator["generator_genotype"].value == generator["genotype"].value
    trained = metadata["trained_gan"]
    assert trained["iterations"].value == 4 and np.isfinite(trained["fid"].value)
    assert [r.data["iteration"] for r in trained["fid_curve"].value.records] == [2, 4]
    assert {f"samples_{c}" for c in CLASSES} <= set(trained)
    provenance = trained["fid_provenance"].value["biocnn1"]
    assert provenance["num_fake"] == 12 and provenance["resize_mode"] == "bilinear 32->64"
    (stored,) = (tmp_path / "storage" / "tiny" / "trained_gan" / "value").glob("*.safetensors")
    state, spec = load_weights(stored)
    assert spec["genotype"] == generator["genotype"].value and spec["class_names"] == CLASSES and state

    # Other learning rates: a fresh run under its own checkpoint, not a refused resume of the first one.
    other = dg.materialize(
        assets,
        instance=instance,
        resources=defs.resources,
        selection=[dg.AssetKey(["tiny", "trained_gan"])],
        run_config={"ops": {"tiny__trained_gan": {"config": {**TINY_RUN, "generator_lr": 2e-3}}}},
    )
    (retrained,) = [e.materialization.metadata for e in other.get_asset_materialization_events()]
    assert retrained["resumed_from_step"].value == 0 and retrained["checkpoint"].value != trained["checkpoint"].value

    baseline = dg.materialize(
        assets,
        instance=instance,
        partition_key="wgan_gp",
        resources=defs.resources,
        selection=[dg.AssetKey(["tiny", "gan_baselines"])],
        run_config={"ops": {"tiny__gan_baselines": {"config": TINY_RUN}}},
    )
    (wgan_gp,) = [e.materialization.metadata for e in baseline.get_asset_materialization_events()]
    assert wgan_gp["loss"].value == "wgan_gp" and wgan_gp["iterations"].value == 4 and np.isfinite(wgan_gp["fid"].value)
    assert wgan_gp["source_fid_curve"].value["15000"] == 19.09


KILL_SCRIPT = """
import os, signal, sys, dagster as dg
import bio_assets.core.gan.training as training
from dagster._core.instance.ref import InstanceRef
from dagster_shared.serdes import deserialize_value
from bio_assets.core.registry import load_registry
from bio_assets.definitions import build_definitions
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager
from resources.search_executor import SearchExecutorResource
root = sys.argv[1]
entries = load_registry(root + "/r.yaml")
defs = build_definitions(entries, {
    "image_dataset": ImageDatasetResource(registry_file=root + "/r.yaml"),
    "io_manager": AssetFileIOManager(root=root + "/storage"),
    "search_executor": SearchExecutorResource(state_root=root + "/search"),
    "compute": ComputeResource(device="cpu", amp=False),
})
assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
save_checkpoint = training.save_checkpoint
def save_then_die(path, checkpoint):  # the process dies by SIGKILL right after its first checkpoint
    save_checkpoint(path, checkpoint)
    os.kill(os.getpid(), signal.SIGKILL)
training.save_checkpoint = save_then_die
# The parent's instance: the run reads its inputs' versions from the same event log.
with dg.DagsterInstance.from_ref(deserialize_value(sys.argv[2], InstanceRef)) as instance:
    selection = [dg.AssetKey(["tiny", "trained_gan"])]
    dg.materialize(assets, instance=instance, resources=defs.resources, selection=selection, run_config=%r)
"""


@pytest.mark.slow(seconds=37)
def test_killed_trained_gan_run_resumes_from_its_checkpoint(tmp_path, prepared):
    import os
    import signal
    import subprocess
    import sys

    from dagster_shared.serdes import serialize_value

    defs, assets, instance = prepared
    upstream = {
        "tiny__feature_extractors": {"config": {"biocnn1_epochs": 1, "biocnn2_epochs": 1, "width": 8}},
        "tiny__generator": {"config": TINY_SEARCH},
        "tiny__discriminator": {"config": TINY_SEARCH},
    }
    keys = [dg.AssetKey(["tiny", n]) for n in ("feature_extractors", "generator", "discriminator")]
    assert dg.materialize(
        assets, instance=instance, resources=defs.resources, selection=keys, run_config={"ops": upstream}
    ).success
    long_run = {
        "ops": {"tiny__trained_gan": {"config": {**TINY_RUN, "iterations": 12, "checkpoint_every": 4, "fid_every": 12}}}
    }
    process = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT % (long_run,), str(tmp_path), serialize_value(instance.get_ref())],
        cwd=os.getcwd(), timeout=600,
    )  # fmt: skip
    assert process.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "search" / "tiny" / "trained_gan"
    assert list(checkpoints.glob("*.safetensors")), "the killed run wrote no checkpoint"
    result = dg.materialize(
        assets,
        instance=instance,
        resources=defs.resources,
        selection=[dg.AssetKey(["tiny", "trained_gan"])],
        run_config=long_run,
    )
    (metadata,) = [e.materialization.metadata for e in result.get_asset_materialization_events()]
    assert metadata["resumed_from_step"].value == 4 and metadata["iterations"].value == 12
