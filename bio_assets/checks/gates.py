"""The quality gates of ``synthetic_dataset``, read back: whether every gate passed on a class's
newest materialization, and why not otherwise. ``extended_classifier`` and the report use it to
leave a class out. The gates themselves run inside ``synthetic_dataset`` on the staged images,
before they may become the class's publication (``bio_assets.core.synthesis.gates``)."""

import dagster as dg

from bio_assets.assets.metadata import check_results_of_run, latest_materialization_run, latest_metadata
from bio_assets.assets.partitions import asset_key, class_partitions
from bio_assets.core.synthesis.gates import GATE_NAMES

GATE_DESCRIPTIONS = {
    "synthetic_class_fid": "The class's FID against its real train images is below max_class_fid.",
    "synthetic_not_memorized": "No synthetic image is a near copy of a real training image (feature space).",
    "synthetic_files_intact": "The requested number of images is staged; every file decodes and matches its MD5.",
    "synthetic_not_in_held_out": "No synthetic image equals or nearly equals a validation image of any class.",
}


def gate_check_specs(dataset: str) -> list[dg.AssetCheckSpec]:
    """The four gates of one class, evaluated by ``synthetic_dataset`` itself before publication.

    Per class, like the asset. Not Dagster-blocking: the gates act themselves (a refused set is never
    published, and ``extended_classifier`` and the report leave the class out), so that one failing
    class neither fails the run of the others nor holds back the unpartitioned assets under automation,
    which would follow whichever class ran last; automation and a backfill then apply the same rule."""
    key = asset_key(dataset, "synthetic_dataset")
    partitions = class_partitions(dataset)
    return [
        dg.AssetCheckSpec(name, asset=key, partitions_def=partitions, description=GATE_DESCRIPTIONS[name])
        for name in GATE_NAMES
    ]


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


def publishable_refusals(instance: dg.DagsterInstance, dataset: str, gan_run: str, class_name: str) -> list[str]:
    """Why images of ``class_name`` from the ``trained_gan`` of run ``gan_run`` are not publishable:
    the class's newest gates failed, or they judged another generator's images. Empty: publishable."""
    _, reasons = gate_status(instance, dataset, class_name)
    judged = latest_metadata(instance, asset_key(dataset, "synthetic_dataset"), class_name).get("trained_gan_run")
    if judged is not None and judged != gan_run:
        reasons.append(
            f"its gates judged the images of trained_gan run {str(judged)[:8]}, not this generator's (run "
            f"{gan_run[:8]}); re-materialize synthetic_dataset for it"
        )
    return reasons
