"""One materialize() chain over the cnn_search group with tiny settings on a tiny dataset."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from bio_assets.core.cnn.genotypes import CellGenotype, MacroGenotype


@pytest.fixture
def prepared(tiny_instance):
    return tiny_instance


TINY_SEARCH = {"population_size": 3, "cycles": 2, "sample_size": 2, "epochs": 1, "input_size": 16, "batch_size": 16}


def test_search_and_classifier_chain(tmp_path, prepared):
    defs, assets, instance = prepared
    search_config = {
        "tiny__searched_cell": {"config": {**TINY_SEARCH, "channels": 4, "max_nodes": 4, "compare_random": True}},
        "tiny__macro_architecture": {"config": {**TINY_SEARCH, "channels": 4}},
        "tiny__classifier": {"config": {"epochs": 1, "seeds": 2, "channels": 4}},
    }
    search_keys = [dg.AssetKey(["tiny", name]) for name in ("searched_cell", "macro_architecture", "classifier")]
    result = dg.materialize(
        assets, instance=instance, resources=defs.resources, selection=search_keys, run_config={"ops": search_config}
    )
    assert result.success
    metadata = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    cell = metadata["searched_cell"]
    assert CellGenotype.parse(cell["genotype"].value).nodes <= 4
    assert cell["num_evaluations"].value == 5 and 1 <= cell["num_trainings"].value <= 5
    assert len(cell["top_k"].value.records) >= 1 and "data:image/png;base64," in cell["fitness_plot"].value
    # Random search at the same budget beside aging evolution (the report's "Does it work?").
    assert 0.0 <= cell["random_search_val_accuracy"].value <= 1.0 and cell["random_search_num_trainings"].value <= 5
    assert cell["aging_minus_random"].value == pytest.approx(
        cell["val_accuracy"].value - cell["random_search_val_accuracy"].value, abs=1e-4
    )
    curves = cell["strategy_curves"].value.records
    assert curves[-1].data["evaluations"] == 5 and curves[-1].data["aging_best"] == round(cell["val_accuracy"].value, 4)
    macro = metadata["macro_architecture"]
    MacroGenotype.parse(macro["genotype"].value)
    assert macro["cell"].value == cell["genotype"].value
    classifier = metadata["classifier"]
    assert 0.0 <= classifier["test_accuracy"].value <= 1.0 and classifier["seeds"].value == [0, 1]
    assert classifier["num_test_images"].value == 3  # one real test image per class, never augmented
    assert (
        "data:image/png;base64," in classifier["roc"].value
        and "| true \\ predicted |" in classifier["confusion_matrix"].value
    )
    weights = list((tmp_path / "storage" / "tiny" / "classifier" / "value").glob("*.safetensors"))
    assert len(weights) == 1
    search_files = sorted(p.name for p in (tmp_path / "search" / "tiny").iterdir())
    assert "cell-cache.json" in search_files and any(n.startswith("macro-state-") for n in search_files)
    assert np.isfinite(classifier["test_macro_f1"].value)


def test_baseline_and_optimizer_partitions_read_every_class(prepared):
    defs, assets, instance = prepared
    baseline = dg.materialize(
        assets,
        instance=instance,
        partition_key="lenet5",
        resources=defs.resources,
        selection=[dg.AssetKey(["tiny", "baseline_classifiers"])],
        run_config={
            "ops": {"tiny__baseline_classifiers": {"config": {"epochs": 1, "batch_size": 8, "input_size": 32}}}
        },
    )
    optimizer = dg.materialize(
        assets,
        instance=instance,
        partition_key="adagrad",
        resources=defs.resources,
        selection=[dg.AssetKey(["tiny", "optimizer_comparison"])],
        run_config={"ops": {"tiny__optimizer_comparison": {"config": {"epochs": 1}}}},
    )
    (lenet,) = [e.materialization.metadata for e in baseline.get_asset_materialization_events()]
    assert lenet["num_train_images"].value == 36 and lenet["num_test_images"].value == 3  # all three classes
    assert lenet["source_accuracy"].value == 0.65 and lenet["input_size"].value == 32
    assert lenet["init"].value.startswith("random")
    (adagrad,) = [e.materialization.metadata for e in optimizer.get_asset_materialization_events()]
    assert adagrad["source_accuracy"].value == 0.9488 and adagrad["learning_rate"].value == 0.001
    assert "initial_accumulator_value 0.1" in adagrad["optimizer_defaults"].value
    assert len(adagrad["training_curve"].value.records) == 1
