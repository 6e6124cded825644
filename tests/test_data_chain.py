"""One materialize() chain over the data group, and its checks on planted defects."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from bio_assets.app.summary import run_failures
from bio_assets.core.registry import DatasetEntry, save_registry
from bio_assets.definitions import build_definitions
from resources.image_dataset import ImageDatasetResource
from resources.io_manager import AssetFileIOManager


@pytest.fixture
def chain(tmp_path, tiny_dataset):
    registry = tmp_path / "registry.yaml"
    save_registry(registry, [DatasetEntry("tiny", str(tiny_dataset))])
    storage = tmp_path / "storage"
    resources = {
        "image_dataset": ImageDatasetResource(registry_file=str(registry)),
        "io_manager": AssetFileIOManager(root=str(storage)),
    }
    defs = build_definitions([DatasetEntry("tiny", str(tiny_dataset))], resources)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tiny__classes", ["Dyskeratotic", "Koilocytotic", "Metaplastic"])
        yield defs, instance, storage


def run_class(defs, instance, class_name, target=20):
    job = defs.resolve_job_def("tiny__paper_pipeline")
    config = {"ops": {"tiny__augmented_dataset": {"config": {"target_per_class": target, "seed": 1}}}}
    return job.execute_in_process(instance=instance, partition_key=class_name, run_config=config, raise_on_error=False)


def test_chain_materializes_all_three_assets_with_metadata_and_passing_checks(chain):
    defs, instance, storage = chain
    result = run_class(defs, instance, "Koilocytotic")
    assert result.success
    by_asset = {m.asset_key.path[-1]: m for m in result.asset_materializations_for_node("tiny__raw_images")}
    raw = by_asset["raw_images"].metadata
    assert raw["num_images"].value == 8 and raw["num_rejected"].value == 0
    assert "data:image/png;base64," in raw["samples"].value
    splits = result.asset_materializations_for_node("tiny__image_splits")[0].metadata
    # The paper profile's 70/10/20 (the source's 80/20 train/test) of 8 originals.
    assert (splits["num_train"].value, splits["num_val"].value, splits["num_test"].value) == (5, 1, 2)
    assert splits["num_sources"].value == 8 and splits["group_pattern"].value.startswith("none")
    augmented = result.asset_materializations_for_node("tiny__augmented_dataset")[0].metadata
    assert augmented["num_images"].value == 20
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {
        "raw_images_valid": True,
        "no_cross_class_twins": True,
        "splits_disjoint": True,
        "splits_non_empty": True,
        "augmented_reaches_target": True,
        "augmented_from_train_only": True,
    }
    assert list((storage / "tiny" / "augmented_dataset" / "Koilocytotic").glob("*.npz"))  # one file per run


def test_materialize_helper_runs_the_data_group_in_one_call(chain, tmp_path):
    defs, instance, _ = chain
    graph_assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(
        graph_assets,
        instance=instance,
        partition_key="Metaplastic",
        resources=defs.resources,
        selection=dg.AssetSelection.groups("data"),
        run_config={"ops": {"tiny__augmented_dataset": {"config": {"target_per_class": 12}}}},
    )
    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {
        "tiny/raw_images",
        "tiny/image_splits",
        "tiny/augmented_dataset",
    }


def test_a_class_folder_without_images_fails_its_partition_only(chain, tiny_dataset):
    defs, instance, _ = chain
    for path in (tiny_dataset / "Metaplastic").iterdir():
        path.write_bytes(b"not an image")
    failed = run_class(defs, instance, "Metaplastic")
    assert not failed.success
    (message,) = run_failures(instance, [instance.get_run_by_id(failed.run_id)], "tiny")
    assert message.startswith("tiny__raw_images [tiny class Metaplastic]: ValueError: class folder")
    assert f"class folder {tiny_dataset / 'Metaplastic'} has no valid image" in message
    assert run_class(defs, instance, "Dyskeratotic").success


def test_leak_check_fails_on_a_planted_test_image(chain):
    from bio_assets.checks.data import build_data_checks
    from bio_assets.core.io.records import ImageSet

    defs, instance, _ = chain
    assert run_class(defs, instance, "Koilocytotic").success
    manager = defs.resources["io_manager"]
    splits = manager.load_stored(instance, dg.AssetKey(["tiny", "image_splits"]), "Koilocytotic")
    augmented = manager.load_stored(instance, dg.AssetKey(["tiny", "augmented_dataset"]), "Koilocytotic")
    leaked = ImageSet(
        np.concatenate([augmented.images, splits.test.images[:1]]),
        np.concatenate([augmented.file_names, splits.test.file_names[:1]]),
        np.concatenate([augmented.sha256, splits.test.sha256[:1]]),
        augmented.class_name,
    )
    leak_check = next(
        c for c in build_data_checks("tiny") if "augmented_from_train_only" in [k.name for k in c.check_keys]
    )
    result = leak_check(augmented_dataset=leaked, image_splits=splits)
    assert result.passed is False and result.metadata["num_leaked_sources"].value == 1


def test_run_without_preset_uses_the_dataset_profile(tmp_path, tiny_dataset):
    """Automation-started runs carry no run config: the target comes from the dataset's profile."""
    targets = {}
    for profile in ("demo", "paper"):
        entries = [DatasetEntry("tiny", str(tiny_dataset), profile=profile)]
        save_registry(tmp_path / f"{profile}.yaml", entries)
        resources = {
            "image_dataset": ImageDatasetResource(registry_file=str(tmp_path / f"{profile}.yaml")),
            "io_manager": AssetFileIOManager(root=str(tmp_path / profile)),
        }
        defs = build_definitions(entries, resources)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("tiny__classes", ["Parabasal", "Koilocytotic"])
            assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
            result = dg.materialize(
                assets,
                instance=instance,
                partition_key="Koilocytotic",
                resources=defs.resources,
                selection=dg.AssetSelection.groups("data"),
            )
            (event,) = [
                e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "augmented_dataset"
            ]
            targets[profile] = event.materialization.metadata["num_images"].value
    assert targets == {"demo": 120, "paper": 200}


def test_image_defects_finds_blank_repeated_and_misshapen_images():
    from bio_assets.checks.data import image_defects
    from bio_assets.core.io.records import ImageSet

    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    images[1] = 17  # a blank image
    sample = ImageSet(images, np.array(list("abcd")), np.array(["h1", "h2", "h3", "h1"]), "A")
    assert image_defects(sample, 8) == {"wrong_shape": 0, "blank": 1, "duplicate_hashes": 1}
    assert image_defects(sample, 16)["wrong_shape"] == 4


def test_a_picture_filed_under_two_classes_is_kept_in_neither(chain, tiny_dataset):
    from PIL import Image

    defs, instance, _ = chain
    shared = tiny_dataset / "Dyskeratotic" / "img_000.png"
    Image.open(shared).save(tiny_dataset / "Koilocytotic" / "same pixels.bmp")  # same pixels, other format
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)] + list(defs.asset_checks)
    for class_name, kept in (("Dyskeratotic", 7), ("Koilocytotic", 8)):
        result = dg.materialize(
            assets,
            instance=instance,
            partition_key=class_name,
            resources=defs.resources,
            selection=dg.AssetSelection.assets(dg.AssetKey(["tiny", "raw_images"])),
        )
        assert result.success
        raw = result.asset_materializations_for_node("tiny__raw_images")[0].metadata
        assert raw["num_images"].value == kept and raw["num_cross_class_twins"].value == 1
        (reason,) = [r.data["reason"] for r in raw["left_out_files"].records]
        assert reason.endswith("filed under classes 'Dyskeratotic' and 'Koilocytotic', so kept in neither")
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert evaluations["no_cross_class_twins"].passed
        assert evaluations["no_cross_class_twins"].metadata["num_twins_left_out"].value == 1


def test_a_class_named_with_spaces_and_non_ascii_letters_goes_through_the_data_group(chain, tiny_dataset):
    defs, instance, storage = chain
    (tiny_dataset / "Metaplastic").rename(tiny_dataset / "Métaplastic cells")
    instance.add_dynamic_partitions("tiny__classes", ["Métaplastic cells"])
    assert run_class(defs, instance, "Métaplastic cells").success
    assert list((storage / "tiny" / "augmented_dataset" / "M%C3%A9taplastic%20cells").glob("*.npz"))


def test_a_class_folder_whose_name_breaks_the_graph_fails_with_the_folder_named(chain, tiny_dataset):
    defs, instance, _ = chain
    (tiny_dataset / "a...b").mkdir()
    failed = run_class(defs, instance, "Koilocytotic")
    (message,) = run_failures(instance, [instance.get_run_by_id(failed.run_id)], "tiny")
    assert "class folder" in message and "a...b" in message and "rename the folder" in message
