"""One materialize() chain over the synthesis and reports groups on a tiny dataset: synthetic
images per class with their gates, the extended classifier, and the metric report."""

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
                "tiny__extended_classifier": {
                    "config": {"epochs": 1, "seeds": seeds, "channels": 8, "bootstrap_samples": 200}
                }
            }
        },
    )


@pytest.fixture
def synthesized(tiny_instance):
    defs, assets, instance = tiny_instance
    return defs, assets, instance, materialize_synthesis(defs, assets, instance)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


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
    real_only_accuracy = meta["real_only_accuracy"].value
    assert meta["classes_with_synthetic"].value == CLASSES and meta["num_synthetic_images"].value == 24
    assert meta["num_train_images"].value == 36 + 24 and meta["seeds"].value == [0, 1]
    for name in ("test_accuracy", "test_macro_f1", "test_auc_micro", "tstr_accuracy", "real_only_accuracy"):
        assert 0.0 <= meta[name].value <= 1.0, name
    assert meta["accuracy_gain_ci_low"].value <= meta["accuracy_gain"].value <= meta["accuracy_gain_ci_high"].value
    assert np.isclose(
        meta["accuracy_gain"].value, meta["test_accuracy"].value - meta["real_only_accuracy"].value, atol=1e-3
    ) or meta["seeds"].value != [0]

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
    assert meta["report_path"].value == str(tmp_path / "report" / "report.md")
    for section in (
        "Dataset",
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
    assert meta["real_only_accuracy"].value == pytest.approx(
        real_only_accuracy, abs=1e-9
    )  # the same stored model on the same test images
    assert "lenet5" in text and "dcgan" in text and "Inception-v3: skipped" in text
    names = {row["name"] for row in meta["metrics_provenance"].value}
    assert {"fid_24_biocnn1", "is_24_biocnn2", "kid_24_biocnn1"} <= names  # 3 classes x 8 synthetic images


def run_gates(defs, assets, instance, class_name: str) -> dict[str, bool]:
    """The gates alone, on the class's current publication."""
    key = dg.AssetKey(["tiny", "synthetic_dataset"])
    synthetic = next(a for a in assets if key in a.keys)
    checks = [c for c in defs.asset_checks if all(k.asset_key == key for k in c.check_keys)]
    inputs = {
        *synthetic.dependency_keys,
        dg.AssetKey(["tiny", "image_splits"]),
        dg.AssetKey(["tiny", "feature_extractors"]),
    }
    upstream = [source for a in assets if a.keys & inputs for source in a.to_source_assets()]
    # A checks-only selection has no asset to take the partitions from, so the partition goes in as the run's tag.
    result = dg.materialize(
        [synthetic, *checks, *upstream],
        instance=instance,
        tags={"dagster/partition": class_name},
        resources=defs.resources,
        selection=dg.AssetSelection.checks_for_assets(key),
        raise_on_error=False,
    )
    return {name: evaluation.passed for name, evaluation in check_results(result).items()}


def plant(store, class_name: str, image: np.ndarray, md5_in_catalog: bool = True) -> None:
    """Overwrite the class's first published image with ``image`` (64x64), its .md5 file and maybe its catalog MD5."""
    import sqlalchemy as sa

    from bio_assets.core.synthesis.catalog import images as image_rows
    from bio_assets.core.synthesis.files import encode_png, md5_hex

    folder = store.class_folder("tiny", class_name)
    name = sorted(store.expected_md5("tiny", class_name))[0]
    data = encode_png(image)
    (folder / name).write_bytes(data)
    (folder / f"{name}.md5").write_text(f"{md5_hex(data)}  {name}\n")
    if md5_in_catalog:
        with store.engine.begin() as connection:
            connection.execute(
                sa.update(image_rows).where(image_rows.c.file_path == f"{class_name}/{name}").values(md5=md5_hex(data))
            )


def test_each_gate_fails_on_its_planted_defect_and_the_extended_classifier_leaves_the_class_out(tmp_path, synthesized):
    import torch

    from bio_assets.core.gan.scoring import resize_uint8
    from resources.catalog import CatalogResource

    defs, assets, instance, _ = synthesized
    store = CatalogResource().store()
    name = CLASSES[0]
    splits = defs.resources["io_manager"].load_stored(instance, dg.AssetKey(["tiny", "image_splits"]), name)
    at_64 = lambda images: resize_uint8(torch.from_numpy(images), 64).numpy()  # noqa: E731
    all_gates = {
        "synthetic_class_fid": True,
        "synthetic_not_memorized": True,
        "synthetic_files_intact": True,
        "synthetic_not_in_held_out": True,
    }
    assert run_gates(defs, assets, instance, name) == all_gates

    plant(store, name, at_64(splits.train.images)[0])  # a copied training image, with consistent MD5s
    assert run_gates(defs, assets, instance, name) == {**all_gates, "synthetic_not_memorized": False}

    assert materialize_synthetic(defs, assets, instance, name).success
    other = defs.resources["io_manager"].load_stored(instance, dg.AssetKey(["tiny", "image_splits"]), CLASSES[2])
    plant(store, name, at_64(other.test.images)[0])  # another class's test image
    gates = run_gates(defs, assets, instance, name)
    assert gates["synthetic_not_in_held_out"] is False and gates["synthetic_files_intact"] is True

    assert materialize_synthetic(defs, assets, instance, name).success
    first = sorted(store.class_folder("tiny", name).glob("*.png"))[0]
    first.unlink()  # a missing file
    assert run_gates(defs, assets, instance, name)["synthetic_files_intact"] is False

    assert materialize_synthetic(defs, assets, instance, name).success
    plant(store, name, np.zeros((64, 64, 3), np.uint8), md5_in_catalog=False)  # bytes changed behind the catalog's MD5
    assert run_gates(defs, assets, instance, name)["synthetic_files_intact"] is False

    # A gate that fails in the materializing run: the class's synthetic images are left out, with the reason.
    failed = materialize_synthetic(defs, assets, instance, name, {"max_class_fid": 0.0})
    assert not failed.success and check_results(failed)["synthetic_class_fid"].passed is False
    extended = materialize_extended(defs, assets, instance)
    (meta,) = [e.materialization.metadata for e in extended.get_asset_materialization_events()]
    assert meta["classes_with_synthetic"].value == CLASSES[1:] and meta["num_synthetic_images"].value == 16
    assert (
        f"| {name} | synthetic_class_fid failed (class_fid=" in meta["excluded_classes"].value
        and "threshold=0.0" in meta["excluded_classes"].value
    )
