"""The data-efficiency study: its subsets, its synthetic filter, and one materialize() of the asset."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest
import torch

from bio_assets.core.cnn.dataset import ClassificationData
from bio_assets.core.cnn.training import LabelledImages, Precision
from bio_assets.core.io.records import ImageSet, ImageSplits
from bio_assets.core.studies.data_efficiency import confident_synthetic, subset_splits
from tests.conftest import TINY_CLASSES, TINY_SETTINGS, materialize_tiny_data, tiny_definitions, tiny_entry

CPU = torch.device("cpu")


def image_set(count: int, name: str) -> ImageSet:
    images = np.arange(count, dtype=np.uint8)[:, None, None, None].repeat(4, 1).repeat(4, 2).repeat(3, 3)
    return ImageSet(
        images, np.array([f"{name}{i}" for i in range(count)]), np.array([str(i) for i in range(count)]), name
    )


def test_subsets_take_the_first_training_images_of_each_class_and_keep_validation_and_test():
    splits = {n: ImageSplits(image_set(7, n), image_set(3, n), image_set(5, n), 0) for n in ("a", "b")}
    two, ten, every = (subset_splits(splits, size) for size in (2, 10, 0))
    assert [len(s.train) for s in two.values()] == [2, 2]
    assert [len(s.train) for s in ten.values()] == [7, 7] and [len(s.train) for s in every.values()] == [7, 7]
    # Nested: the 2 images are the first 2 of the 7; validation and test are untouched.
    assert list(two["a"].train.file_names) == list(splits["a"].train.file_names[:2])
    assert two["b"].val is splits["b"].val and two["b"].test is splits["b"].test
    with pytest.raises(ValueError, match="size must be >= 0"):
        subset_splits(splits, -1)


class BrightnessJudge(torch.nn.Module):
    """Logits (B, 2) = scale * (-brightness, brightness): class 1 is bright."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, H, W) in [-1, 1]
        brightness = x.mean(dim=(1, 2, 3))
        return torch.stack([-brightness, brightness], dim=1) * self.scale


def flat_images(levels: list[int]) -> torch.Tensor:
    return torch.tensor(levels, dtype=torch.uint8)[:, None, None, None].expand(-1, 4, 4, 3).contiguous()


def test_the_filter_keeps_the_synthetic_images_whose_class_the_calibrated_judge_believes():
    # Validation: dark images are class 0, bright class 1; the judge is right on the clear ones and
    # wrong on a mid-dark "bright" one, so scaling cannot make it sure of everything.
    val = LabelledImages(flat_images([20, 40, 215, 235, 110]), torch.tensor([0, 0, 1, 1, 1]))
    data = ClassificationData(val, val, val, ("dark", "bright"), "t")
    # Synthetic: two convincing images of their class, one mid-grey "bright", one bright labelled "dark".
    fake = LabelledImages(flat_images([30, 225, 130, 225]), torch.tensor([0, 1, 1, 0]))
    kept, temperature = confident_synthetic(
        BrightnessJudge(4.0), data, fake, 0.8, device=CPU, precision=Precision(), input_size=None
    )
    assert 0.05 < temperature < 20.0  # inside the grid: the validation error keeps it finite
    assert kept.images[:, 0, 0, 0].tolist() == [30, 225] and kept.labels.tolist() == [0, 1]


@pytest.mark.slow(seconds=40)
def test_the_study_materializes_a_learning_curve_at_each_size(tmp_path, tiny_dataset):
    study = {"sizes": (2, 0), "seeds": 1, "epochs": 2, "fitness_repeats": 2, "baselines": ("lenet5",)}
    entry = tiny_entry(tiny_dataset, settings={**TINY_SETTINGS, "data_efficiency": study})
    defs, assets = tiny_definitions(tmp_path, tiny_dataset, entry)
    # The study is opt-in: nothing automatic starts it.
    (asset,) = [a for a in assets if a.key == dg.AssetKey(["tiny", "data_efficiency"])]
    assert asset.automation_conditions_by_key.get(asset.key) is None
    others = [a for a in assets if a.is_materializable and a is not asset]
    assert all(a.automation_conditions_by_key.get(k) is not None for a in others for k in a.keys)
    with dg.instance_for_test() as instance:
        materialize_tiny_data(defs, assets, instance)
        keys = [
            dg.AssetKey(["tiny", n]) for n in ("feature_extractors", "generator", "discriminator", "data_efficiency")
        ]
        result = dg.materialize(assets, instance=instance, resources=defs.resources, selection=keys)
        assert result.success
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "data_efficiency"]
    metadata = event.materialization.metadata
    rows = metadata["study"].value
    # Tiny classes have 6 training images: the sizes 2 and "all".
    assert [r["size"] for r in rows] == [2, 0]
    assert [set(r["train_per_class"].values()) for r in rows] == [{2}, {6}]
    assert set(rows[0]["train_per_class"]) == set(TINY_CLASSES)
    for row in rows:
        for arm in ("searched_test", "extended_test", "control_test", "baseline_test"):
            value, low, high = row[arm]
            assert 0.0 <= low <= value <= high <= 1.0
        assert row["best_baseline"] == "lenet5" and row["synthetic"]["added"] > 0
    assert "data:image/png;base64," in metadata["learning_curve"].value
    assert metadata["study_table"].value.count("\n") == 3  # header, rule, two sizes
    assert metadata["fitness_repeats"].value == 2 and metadata["seeds"].value == 1


def test_the_summary_calls_an_unmade_study_opt_in_not_missing(tmp_path, tiny_dataset):
    from bio_assets.app.summary import summary_rows

    defs, _ = tiny_definitions(tmp_path, tiny_dataset)
    with dg.instance_for_test() as instance:
        rows = {(asset, partition): status for asset, partition, status, _ in summary_rows(instance, defs, "tiny", [])}
    assert rows[("tiny/data_efficiency", "-")] == "opt-in"
    assert rows[("tiny/searched_cell", "-")] == "missing"
