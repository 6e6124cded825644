"""Quality gates on each class of ``synthetic_dataset``: blocking asset checks that read the
published files, and the gate status ``extended_classifier`` uses to leave a class out."""

import dagster as dg
import numpy as np
import torch

from bio_assets.assets.metadata import check_results_of_run, latest_materialization_run, latest_metadata
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.checks.data import runs_with
from bio_assets.core.gan.scoring import resize_uint8
from bio_assets.core.io.records import ImageSplits
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.fid import FeatureStatistics, fid_from_statistics
from bio_assets.core.synthesis.gates import held_out_leaks, memorization, typical_spacing
from resources.catalog import CatalogResource
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.io_manager import AssetFileIOManager

GATE_NAMES = ("synthetic_class_fid", "synthetic_not_memorized", "synthetic_files_intact", "synthetic_not_in_held_out")


def _settings(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> dict:
    """The thresholds ``synthetic_dataset`` recorded for this partition; fails loudly if absent."""
    partition = context.op_execution_context.partition_key
    metadata = latest_metadata(context.instance, key, partition)
    missing = [
        n for n in ("max_class_fid", "min_distance_ratio", "gate_extractor", "num_requested") if n not in metadata
    ]
    if missing:
        raise ValueError(f"{key.to_user_string()} [{partition}] recorded no {missing}; re-materialize it")
    return metadata


def _published(catalog: CatalogResource, dataset: str, class_name: str) -> np.ndarray:
    """The class's current published images, uint8 ``(N, 64, 64, 3)``, in catalog order."""
    current, images = catalog.store().load_current(dataset, class_name)  # under the class lock
    if current is None or not len(images):
        raise ValueError(f"the catalog lists no synthetic images of {dataset}/{class_name}")
    return images


def _features(
    feature_extractor: FeatureExtractorResource,
    compute: ComputeResource,
    extractors: ModelWeights,
    name: str,
    images: np.ndarray,
) -> np.ndarray:
    extractor = feature_extractor.serve(name, extractors, compute.torch_device())
    return extractor.features(torch.from_numpy(np.ascontiguousarray(images)))


def build_synthetic_checks(dataset: str) -> list[dg.AssetChecksDefinition]:
    partitions = class_partitions(dataset)
    key = asset_key(dataset, "synthetic_dataset")
    extractors_in = {"feature_extractors": dg.AssetIn(key=asset_key(dataset, "feature_extractors"))}
    splits_key = asset_key(dataset, "image_splits")
    class_splits_in = {"image_splits": dg.AssetIn(key=splits_key)}
    common = dict(asset=key, partitions_def=partitions, blocking=True, automation_condition=runs_with(key))

    def _gate_inputs(context, compute, feature_extractor, catalog, feature_extractors):
        """(recorded settings, the class's published images, images -> gate-extractor features)."""
        settings = _settings(context, key)
        fake = _published(catalog, dataset, context.op_execution_context.partition_key)
        return (
            settings,
            fake,
            lambda images: _features(
                feature_extractor, compute, feature_extractors, settings["gate_extractor"], images
            ),
        )

    @dg.asset_check(
        **common,
        additional_ins={**extractors_in, **class_splits_in},
        description="The class's FID against its real train images is below max_class_fid.",
    )
    def synthetic_class_fid(
        context: dg.AssetCheckExecutionContext,
        compute: ComputeResource,
        feature_extractor: FeatureExtractorResource,
        catalog: CatalogResource,
        feature_extractors: ModelWeights,
        image_splits: ImageSplits,
    ) -> dg.AssetCheckResult:
        settings, fake, features = _gate_inputs(context, compute, feature_extractor, catalog, feature_extractors)
        real = image_splits.train.images
        name = settings["gate_extractor"]
        fid = fid_from_statistics(
            FeatureStatistics.of(features(real)),
            FeatureStatistics.of(features(fake)),
            name,
            f"real {real.shape[1]} px, synthetic {fake.shape[1]} px",
        )
        return dg.AssetCheckResult(
            passed=fid.value < settings["max_class_fid"],
            metadata={
                "class_fid": round(fid.value, 4),
                "threshold": settings["max_class_fid"],
                "fid_provenance": dg.MetadataValue.json(fid.to_json()),
            },
        )

    @dg.asset_check(
        **common,
        additional_ins={**extractors_in, **class_splits_in},
        description="No synthetic image is a near copy of a real training image (feature space).",
    )
    def synthetic_not_memorized(
        context: dg.AssetCheckExecutionContext,
        compute: ComputeResource,
        feature_extractor: FeatureExtractorResource,
        catalog: CatalogResource,
        feature_extractors: ModelWeights,
        image_splits: ImageSplits,
    ) -> dg.AssetCheckResult:
        settings, fake, features = _gate_inputs(context, compute, feature_extractor, catalog, feature_extractors)
        train = resize_uint8(torch.from_numpy(image_splits.train.images), fake.shape[1]).numpy()
        outcome = memorization(features(fake), features(train), settings["min_distance_ratio"])
        return dg.AssetCheckResult(
            passed=outcome.pop("passed"),
            metadata={
                **{k: v for k, v in outcome.items() if not isinstance(v, list)},
                "too_close": dg.MetadataValue.json(outcome["too_close"]),
            },
        )

    @dg.asset_check(
        **common,
        description=(
            "The requested number of images is catalogued, and every file exists, decodes to 64x64 RGB "
            "and matches its MD5."
        ),
    )
    def synthetic_files_intact(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
        settings = _settings(context, key)
        class_name = context.op_execution_context.partition_key
        current, defects = catalog.store().verify(dataset, class_name)
        listed = len(catalog.store().expected_md5(dataset, class_name))
        count_ok = current is not None and listed == settings["num_requested"] == current["num_images"]
        examples = {name: values[:10] for name, values in vars(defects).items() if values}
        return dg.AssetCheckResult(
            passed=count_ok and defects.ok,
            metadata={
                "num_requested": settings["num_requested"],
                "num_catalogued": listed,
                **defects.counts(),
                "examples": dg.MetadataValue.json(examples),
            },
        )

    @dg.asset_check(
        **common,
        additional_ins=extractors_in,
        description="No synthetic image equals or nearly equals any validation or test image of any class.",
    )
    def synthetic_not_in_held_out(
        context: dg.AssetCheckExecutionContext,
        compute: ComputeResource,
        feature_extractor: FeatureExtractorResource,
        catalog: CatalogResource,
        io_manager: dg.ResourceParam[AssetFileIOManager],
        feature_extractors: ModelWeights,
    ) -> dg.AssetCheckResult:
        settings, fake, features = _gate_inputs(context, compute, feature_extractor, catalog, feature_extractors)
        class_name = context.op_execution_context.partition_key
        # Every class's splits: Dagster 1.13 gives a partitioned check's inputs the check's own
        # partition whatever the partition mapping, so they are read from storage here.
        classes = context.instance.get_dynamic_partitions(partitions.name)
        all_splits = {name: io_manager.load_stored(context.instance, splits_key, name) for name in classes}
        size = fake.shape[1]
        held = np.concatenate(
            [
                resize_uint8(torch.from_numpy(getattr(s, split).images), size).numpy()
                for s in all_splits.values()
                for split in ("val", "test")
                if len(getattr(s, split))
            ]
        )
        train = resize_uint8(torch.from_numpy(all_splits[class_name].train.images), size).numpy()
        outcome = held_out_leaks(
            fake, features(fake), held, features(held), typical_spacing(features(train)), settings["min_distance_ratio"]
        )
        return dg.AssetCheckResult(
            passed=outcome.pop("passed"),
            metadata={
                **{k: v for k, v in outcome.items() if not isinstance(v, list)},
                "exact": dg.MetadataValue.json(outcome["exact"]),
            },
        )

    return [synthetic_class_fid, synthetic_not_memorized, synthetic_files_intact, synthetic_not_in_held_out]


def _evaluation_summary(evaluation: dg.AssetCheckEvaluation) -> str:
    """The failed evaluation's own numbers, e.g. ``class_fid=180.2, threshold=150.0``."""
    shown = [
        f"{k}={v.value}"
        for k, v in evaluation.metadata.items()
        if isinstance(v.value, (int, float)) and not isinstance(v.value, bool)
    ]
    return ", ".join(shown[:6])


def gate_status(instance: dg.DagsterInstance, dataset: str, class_name: str) -> tuple[bool, list[str]]:
    """Whether every gate passed on the class's newest materialization, and why not otherwise."""
    key = asset_key(dataset, "synthetic_dataset")
    run_id = latest_materialization_run(instance, key, class_name)
    if run_id is None:
        return False, ["synthetic_dataset is not materialized for this class"]
    results = check_results_of_run(instance, run_id, key, class_name)
    reasons = []
    for name in GATE_NAMES:
        if name not in results:
            reasons.append(f"{name}: not evaluated on the newest materialization (run {run_id[:8]})")
        elif not results[name].passed:
            reasons.append(f"{name} failed ({_evaluation_summary(results[name])})")
    return not reasons, reasons
