"""One materialize() chain over the synthesis and reports groups on a tiny dataset: synthetic
images per class with their gates (each failing on its planted defect), the extended classifier,
and the metric report."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from tests.conftest import TINY_CLASSES as CLASSES

TINY_GAN = {"image_size": 32, "generator_width": 16, "discriminator_width": 8, "batch_size": 8}
TINY_SEARCH_GAN = {**TINY_GAN, "population_size": 2, "cycles": 1, "sample_size": 1, "epochs": 1, "fid_samples": 12}
TINY_SEARCH_CNN = {
    "population_size": 2,
    "cycles": 1,
    "sample_size": 1,
    "epochs": 1,
    "input_size": 16,
    "batch_size": 16,
    "channels": 8,
}
UPSTREAM = {
    "tiny__searched_cell": {"config": {**TINY_SEARCH_CNN, "max_nodes": 3}},
    "tiny__macro_architecture": {"config": TINY_SEARCH_CNN},
    "tiny__classifier": {"config": {"epochs": 1, "seeds": 1, "channels": 8}},
    "tiny__feature_extractors": {"config": {"biocnn1_epochs": 1, "biocnn2_epochs": 1, "width": 8}},
    "tiny__generator": {"config": TINY_SEARCH_GAN},
    "tiny__discriminator": {"config": TINY_SEARCH_GAN},
    "tiny__trained_gan": {
        "config": {**TINY_GAN, "iterations": 4, "fid_every": 4, "checkpoint_every": 4, "fid_samples": 12}
    },
}
# FID of a 4-iteration GAN on 1-epoch features is meaningless; the gate threshold is opened so
# the chain exercises the other gates (each gate's failure has its own test).
SYNTHETIC = {"images_per_class": 8, "max_class_fid": 1e9}
UPSTREAM_KEYS = [
    dg.AssetKey(["tiny", n])
    for n in (
        "searched_cell",
        "macro_architecture",
        "classifier",
        "feature_extractors",
        "generator",
        "discriminator",
        "trained_gan",
    )
]


def materialize_synthetic(
    defs, assets, instance, class_name: str, config: dict | None = None
) -> dg.ExecuteInProcessResult:
    key = dg.AssetKey(["tiny", "synthetic_dataset"])
    checks = dg.AssetSelection.checks_for_assets(key)
    return dg.materialize(
        [*assets, *defs.asset_checks],
        instance=instance,
        partition_key=class_name,
        resources=defs.resources,
        selection=dg.AssetSelection.assets(key) | checks,
        run_config={"ops": {"tiny__synthetic_dataset": {"config": {**SYNTHETIC, **(config or {})}}}},
        raise_on_error=False,
    )


def materialize_synthesis(defs, assets, instance) -> dict[str, dg.ExecuteInProcessResult]:
    """Everything synthetic_dataset needs, then each class's synthetic images with their gates."""
    assert dg.materialize(
        assets, instance=instance, resources=defs.resources, selection=UPSTREAM_KEYS, run_config={"ops": UPSTREAM}
    ).success
    return {name: materialize_synthetic(defs, assets, instance, name) for name in CLASSES}


def materialize_extended(defs, assets, instance, seeds: int = 1) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        instance=instance,
        resources=defs.resources,
        selection=[dg.AssetKey(["tiny", "extended_classifier"])],
        run_config={
            "ops": {
                "tiny__extended_classifier": {"config": {"epochs": 1, "seeds": seeds, "channels": 8, "batch_size": 8}}
            }
        },
    )


@pytest.fixture
def synthesized(tiny_instance):
    defs, assets, instance = tiny_instance
    return defs, assets, instance, materialize_synthesis(defs, assets, instance)


def blocking_checks_pass_for_extended(defs, assets, instance) -> bool:
    """Whether automation's ``all_deps_blocking_checks_passed()`` lets ``extended_classifier`` run now."""
    key = dg.AssetKey(["tiny", "extended_classifier"])
    # Dagster's condition, restricted to the synthetic_dataset parent (the data checks are not run here).
    condition = dg.AutomationCondition.all_deps_blocking_checks_passed().allow(
        dg.AssetSelection.assets(dg.AssetKey(["tiny", "synthetic_dataset"]))
    )
    with_condition = [
        a.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=condition)) if key in a.keys else a
        for a in assets
    ]
    changed = dg.Definitions(assets=with_condition, asset_checks=defs.asset_checks, resources=defs.resources)
    result = dg.evaluate_automation_conditions(
        defs=changed, instance=instance, asset_selection=dg.AssetSelection.assets(key)
    )
    return result.get_num_requested(key) == 1


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.slow(seconds=20)
def test_synthetic_dataset_extended_classifier_and_report(tmp_path, synthesized):
    defs, assets, instance, results = synthesized
    for name, result in results.items():
        assert result.success, [
            str(e.event_specific_data.error.cause or e.event_specific_data.error)[-1500:]
            for e in result.all_events
            if e.is_step_failure
        ]
        evaluations = check_results(result)
        assert set(evaluations) == {
            "synthetic_class_fid",
            "synthetic_not_memorized",
            "synthetic_files_intact",
            "synthetic_not_in_held_out",
        }
        assert all(e.passed for e in evaluations.values()), {k: e.metadata for k, e in evaluations.items()}
        (meta,) = [e.materialization.metadata for e in result.get_asset_materialization_events()]
        assert meta["num_images"].value == 8 and meta["resize_mode"].value == "bilinear 32->64"
        folder = tmp_path / "home" / "synthetic" / "tiny" / name
        assert meta["output_folder"].value == str(folder)
        assert len(list(folder.glob("*.png"))) == 8 and len(list(folder.glob("*.png.md5"))) == 8

    extended = materialize_extended(defs, assets, instance, seeds=2)
    (meta,) = [e.materialization.metadata for e in extended.get_asset_materialization_events()]
    assert (
        meta["classes_with_synthetic"].value == CLASSES
        and meta["num_synthetic_images"].value == 24 == meta["num_synthetic_images_added"].value
    )
    assert meta["num_train_images"].value == 36 + 24 and meta["seeds"].value == [0, 1]
    for name in ("test_accuracy", "test_macro_f1", "test_auc_micro", "tstr_accuracy", "control_accuracy"):
        assert 0.0 <= meta[name].value <= 1.0, name
    # The gain is against the real-only control with as many optimizer steps, averaged over both seeds.
    assert meta["accuracy_gain_ci_low"].value <= meta["accuracy_gain"].value <= meta["accuracy_gain_ci_high"].value
    assert meta["accuracy_gain"].value == pytest.approx(
        meta["test_accuracy"].value - meta["control_accuracy"].value, abs=1e-3
    )
    assert "2 seeds and" in meta["accuracy_gain_interval"].value
    assert meta["control_steps"].value == meta["extended_steps"].value > meta["control_equal_epochs_steps"].value
    # GAN-test: the control's models judge all 24 synthetic images; 3 balanced classes, chance 1/3.
    assert 0.0 <= meta["class_agreement_real_classifier"].value <= 1.0
    assert meta["class_agreement_real_classifier_chance"].value == pytest.approx(1 / 3, abs=1e-4)
    assert set(meta["class_agreement_real_classifier_by_class"].value) == set(CLASSES)
    assert meta["optimizer"].value == "adam" and meta["learning_rate"].value == 0.001  # the demo profile's

    report = dg.materialize(
        assets,
        instance=instance,
        resources=defs.resources,
        selection=[dg.AssetKey(["tiny", "metric_reports"])],
        run_config={
            "ops": {
                "tiny__metric_reports": {
                    "config": {"kid_subsets": 10, "kid_subset_size": 8, "output_dir": str(tmp_path / "report")}
                }
            }
        },
    )
    (meta,) = [e.materialization.metadata for e in report.get_asset_materialization_events()]
    text = (tmp_path / "report" / "report.md").read_text()
    # Every run keeps its report (and figures) in its own folder; the newest is also one level up.
    assert meta["report_path"].value == str(tmp_path / "report" / report.run_id / "report.md")
    assert (tmp_path / "report" / report.run_id / "report.md").read_text() == text
    assert len(meta["report"].value) < 400_000  # small previews inline, full-size figures as files
    for section in (
        "Dataset",
        "Does it work?",
        "Does the generator follow its class?",
        "Does synthetic data help?",
        "real-only control trained for as many optimizer steps",
        "one training of the GAN",
        "random search",
        "departs from the source",
        "classic baselines",
        "classic GANs",
        "by feature extractor",
        "colour-histogram KL",
        "TSTR",
        "ROC curves",
        "samples per class",
        "do not reach the source",
        "Settings and seeds",
    ):
        assert section in text and section in meta["report"].value, section
    assert text.count("](figures/") == len(list((tmp_path / "report" / "figures").glob("*.png"))) >= 3 + 2 + 3 + 1
    for extractor in ("biocnn1", "biocnn2"):
        assert (
            np.isfinite(meta[f"fid_{extractor}"].value)
            and np.isfinite(meta[f"kid_{extractor}"].value)
            and meta[f"is_{extractor}"].value >= 1.0
        )
    assert 0.0 <= meta["real_only_accuracy"].value <= 1.0 and 0.0 <= meta["control_accuracy"].value <= 1.0
    assert "control with as many epochs" in text and "real test split" in text
    assert 0.0 <= meta["class_agreement_real_classifier"].value <= 1.0
    assert "lenet5" in text and "dcgan" in text and "Inception-v3: skipped" in text
    names = {row["name"] for row in meta["metrics_provenance"].value}
    assert {"fid_24_biocnn1", "is_24_biocnn2", "kid_24_biocnn1"} <= names  # 3 classes x 8 synthetic images

    # The same chain's published images, with a defect planted for each gate (one chain for both checks).
    assert_each_gate_fails_on_its_planted_defect(tmp_path, defs, instance)


def gate_inputs_of(defs, instance, class_name: str, fake: np.ndarray):
    """The gate inputs of ``class_name`` with ``fake`` as the staged images (the chain's real data)."""
    import torch

    from bio_assets.core.synthesis.gates import GateInputs
    from resources.feature_extractor import FeatureExtractorResource

    manager = defs.resources["io_manager"]
    splits = {c: manager.load_stored(instance, dg.AssetKey(["tiny", "image_splits"]), c) for c in CLASSES}
    extractors = manager.load_stored(instance, dg.AssetKey(["tiny", "feature_extractors"]), None)
    extractor = FeatureExtractorResource().serve("biocnn1", extractors, torch.device("cpu"))
    return GateInputs(
        fake=fake,
        train=splits[class_name].train.images,
        held_out=np.concatenate([s.val.images for s in splits.values()]),
        features=lambda batch: extractor.features(torch.from_numpy(np.ascontiguousarray(batch))),
        extractor="biocnn1",
    ), splits


def assert_each_gate_fails_on_its_planted_defect(tmp_path, defs, instance) -> None:
    """Each gate fails on a defect planted in a set of synthetic images that passed every gate."""
    import torch

    from bio_assets.core.data.resize import resize_uint8
    from bio_assets.core.synthesis.files import FolderDefects, verify_folder, write_images
    from bio_assets.core.synthesis.gates import GateThresholds, evaluate_gates
    from resources.catalog import CatalogResource

    name = CLASSES[0]
    _, published = CatalogResource().store().load_current("tiny", name)  # (8, 64, 64, 3), passed every gate
    at_64 = lambda images: resize_uint8(torch.from_numpy(images), 64).numpy()  # noqa: E731
    thresholds = GateThresholds(max_class_fid=1e9, min_distance_ratio=0.05, num_requested=8)
    intact = FolderDefects([], [], [], [], [])

    def gates(fake, staged=intact, count=8) -> dict[str, bool]:
        inputs, _ = gate_inputs_of(defs, instance, name, fake)
        return {r.name: r.passed for r in evaluate_gates(inputs, thresholds, staged=staged, num_staged=count)}

    assert all(gates(published).values())
    _, splits = gate_inputs_of(defs, instance, name, published)
    copied = published.copy()
    copied[0] = at_64(splits[name].train.images)[0]  # a copied training image
    assert gates(copied) == {**gates(published), "synthetic_not_memorized": False}
    leaked = published.copy()
    leaked[0] = at_64(splits[CLASSES[2]].val.images)[0]  # another class's validation image
    assert gates(leaked)["synthetic_not_in_held_out"] is False
    tested = published.copy()
    tested[0] = at_64(splits[CLASSES[2]].test.images)[0]  # a test image: the gate never looks at the test split
    assert gates(tested)["synthetic_not_in_held_out"] is True

    folder = tmp_path / "staged"
    folder.mkdir()
    files = write_images(folder, name, published)
    (folder / files[0].file_name).unlink()  # a missing file
    missing = verify_folder(folder, {f.file_name: f.md5 for f in files}, 64)
    assert gates(published, staged=missing)["synthetic_files_intact"] is False
    assert gates(published, count=7)["synthetic_files_intact"] is False  # fewer images than requested


@pytest.mark.slow(seconds=17)
def test_a_class_failing_its_gates_is_not_published_exported_or_used(tmp_path, tiny_instance):
    from bio_assets.core.synthesis.export import export_package
    from resources.catalog import CatalogResource

    defs, assets, instance = tiny_instance
    assert dg.materialize(
        assets, instance=instance, resources=defs.resources, selection=UPSTREAM_KEYS, run_config={"ops": UPSTREAM}
    ).success
    store = CatalogResource().store()
    name = CLASSES[0]
    failed = materialize_synthetic(defs, assets, instance, name, {"max_class_fid": 0.0})  # its first set fails
    # A failed gate is the class's own: recorded for its partition, and the run is not failed for it.
    gate = check_results(failed)["synthetic_class_fid"]
    assert failed.success and gate.passed is False and gate.partition == name
    (meta,) = [e.materialization.metadata for e in failed.get_asset_materialization_events()]
    assert meta["published"].value is False and meta["dagster/row_count"].value == 0
    assert store.sync("tiny", name) is None and not store.class_folder("tiny", name).exists()
    for other in CLASSES[1:]:
        assert materialize_synthetic(defs, assets, instance, other).success
    before = store.sync("tiny", CLASSES[1])["publication"]
    refused = materialize_synthetic(defs, assets, instance, CLASSES[1], {"max_class_fid": 0.0})
    assert refused.success and store.sync("tiny", CLASSES[1])["publication"] == before  # the previous one stays
    # Automation reads the gates as a backfill does: the classes that passed hold nothing back, whichever
    # class ran last (here a failing one), and extended_classifier leaves the failing ones out itself.
    assert blocking_checks_pass_for_extended(defs, assets, instance)

    summary = export_package(store, "tiny", tmp_path / "package")
    exported = sorted(p.name for p in (tmp_path / "package").iterdir() if p.is_dir())
    assert exported == CLASSES[1:] and summary.num_images == 16  # the gate-failed class is never exported

    extended = materialize_extended(defs, assets, instance)
    (meta,) = [e.materialization.metadata for e in extended.get_asset_materialization_events()]
    assert meta["classes_with_synthetic"].value == [CLASSES[2]] and meta["num_synthetic_images"].value == 8
    assert f"| {name} | synthetic_class_fid failed (class_fid=" in meta["excluded_classes"].value
    assert "threshold=0.0" in meta["excluded_classes"].value
