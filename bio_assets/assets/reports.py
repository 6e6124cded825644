"""The reports group: one comparison report per dataset, in the UI and as a file."""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from bio_assets.assets.common import asset_options, data_ins, run_profile
from bio_assets.assets.data import class_set_key
from bio_assets.assets.metadata import latest_metadata
from bio_assets.assets.partitions import asset_key
from bio_assets.assets.synthesis import require_current_generator
from bio_assets.checks.gates import gate_status
from bio_assets.core.cnn.architectures import stored_classifier
from bio_assets.core.cnn.baselines import BASELINES
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.gan.baselines import GAN_BASELINES, SEARCHED_SOURCE_FID
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.profiles import PROFILE_DEPARTURES
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.reporting import source
from bio_assets.core.reporting.document import Report
from bio_assets.core.reporting.inputs import RecordedResults, ReportSettings, report_inputs
from bio_assets.core.reporting.report import ReportInputs, build_report
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.paths import data_home

GROUP = "reports"
ROW_KEYS = {
    "real only (classifier asset)": "real_only_accuracy",
    "real only, control with as many steps": "control_accuracy",
    "real only, control with as many epochs": "control_equal_epochs_accuracy",
    "real + synthetic": "extended_accuracy",
    "synthetic only (TSTR)": "tstr_accuracy",
}
SETTING_NAMES = (
    "seed",
    "seeds",
    "epochs",
    "iterations",
    "batch_size",
    "image_size",
    "class_seed",
    "num_images",
    "fid_samples",
    "population_size",
    "cycles",
)


class ReportConfig(dg.Config):
    output_dir: str = Field(
        default="", description="folder of report.md and its figures; empty: <data home>/reports/<dataset>"
    )
    kid_subsets: int = Field(default=100, description="random subsets KID averages over")
    kid_subset_size: int = Field(
        default=1000, description="KID subset size; shrunk to the smaller set for small classes"
    )
    is_splits: int = Field(
        default=1, description="Inception Score splits (the source's convention: 10 on 50 000 images)"
    )
    seed: int = Field(default=0, description="seed of KID's subsets and of the KL protocol's image draws")


def settings_of(instance: dg.DagsterInstance, dataset: str, name: str, partition: str | None = None) -> dict:
    """The run config and recorded seeds/budgets of the newest materialization of ``dataset/name``."""
    key = asset_key(dataset, name)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records:
        return {"status": "not materialized"}
    run = instance.get_run_by_id(records[0].run_id)
    config = (
        ((run.run_config or {}).get("ops", {}).get(key.to_python_identifier(), {}) or {}).get("config", {})
        if run
        else {}
    )
    metadata = latest_metadata(instance, key, partition)
    recorded = {k: metadata[k] for k in SETTING_NAMES if k in metadata}
    return {
        **config,
        **recorded,
        "run": records[0].run_id[:8],
        "profile": (run.tags or {}).get("bio_assets/profile", "-") if run else "-",
    }


AT_BASELINE_BUDGET = "searched GAN at the baselines' budget"


def model_rows(instance: dg.DagsterInstance, dataset: str) -> tuple[list[dict], list[dict]]:
    """CNN rows (searched, extended, each baseline) and GAN rows (searched, each baseline) from recorded metadata."""
    fields = ("test_accuracy", "test_accuracy_std", "test_accuracy_ci_low", "test_macro_f1", "epochs", "chance")
    cnn = [
        {
            "model": "searched CNN (real)",
            **{
                f: v
                for f, v in latest_metadata(instance, asset_key(dataset, "classifier"), None).items()
                if f in fields
            },
        }
    ]
    cnn.append(
        {
            "model": "searched CNN (real + synthetic)",
            **{
                f: v
                for f, v in latest_metadata(instance, asset_key(dataset, "extended_classifier"), None).items()
                if f in fields
            },
        }
    )
    for name, baseline in BASELINES.items():
        meta = latest_metadata(instance, asset_key(dataset, "baseline_classifiers"), name)
        cnn.append(
            {
                "model": name,
                **{f: v for f, v in meta.items() if f in fields},
                **({"seeds": len(meta["seeds"])} if "seeds" in meta else {}),
                "source_accuracy": baseline.source_accuracy,
            }
        )
    cnn[0]["source_accuracy"], cnn[1]["source_accuracy"] = source.SEARCHED_CNN_ACCURACY, source.EXTENDED_ACCURACY
    searched = latest_metadata(instance, asset_key(dataset, "trained_gan"), None)
    gan = [
        {
            "model": "searched GAN",
            **{f: searched[f] for f in ("fid", "iterations") if f in searched},
            "source_fid": SEARCHED_SOURCE_FID,
            "note": "source: 100 000 iterations",
        }
    ]
    budgets = set()
    for name, baseline in GAN_BASELINES.items():
        meta = latest_metadata(instance, asset_key(dataset, "gan_baselines"), name)
        budgets |= {meta["iterations"]} if "iterations" in meta else set()
        gan.append(
            {
                "model": name,
                **{f: meta[f] for f in ("fid", "iterations") if f in meta},
                "source_fid": baseline.source_fid.get(15_000, float("nan")),
                "note": baseline.source_note,
            }
        )
    at_budget = matched_budget_row(searched, budgets)
    return cnn, gan if at_budget is None else [gan[0], at_budget, *gan[1:]]


def matched_budget_row(searched: dict, budgets: set[int]) -> dict | None:
    """The searched GAN's FID at the baselines' iteration count (from its FID curve), when it trained
    longer than they did and all baselines share one budget."""
    curve = searched.get("fid_by_iteration") or {}
    if len(budgets) != 1 or searched.get("iterations") in budgets or str(next(iter(budgets))) not in curve:
        return None
    budget = next(iter(budgets))
    return {
        "model": AT_BASELINE_BUDGET,
        "fid": curve[str(budget)],
        "iterations": budget,
        "source_fid": float("nan"),
        "note": "the searched GAN's FID curve at the baselines' iterations: the equal-budget comparison",
    }


def recorded_results(
    context: dg.AssetExecutionContext,
    entry: DatasetEntry,
    class_names: tuple[str, ...],
    synthetic: dict,
    report_settings: dict,
) -> RecordedResults:
    """What the other assets recorded in the instance, for the report."""
    instance, dataset = context.instance, entry.name
    cnn_rows, gan_rows = model_rows(instance, dataset)
    main = ("searched_cell", "macro_architecture", "classifier", "feature_extractors", "generator", "discriminator")
    settings = [(name, settings_of(instance, dataset, name)) for name in (*main, "trained_gan", "extended_classifier")]
    settings += [
        (f"synthetic_dataset [{n}]", settings_of(instance, dataset, "synthetic_dataset", n)) for n in synthetic
    ]
    settings += [(f"gan_baselines [{n}]", settings_of(instance, dataset, "gan_baselines", n)) for n in GAN_BASELINES]
    settings.append(("metric_reports", report_settings))
    cell = latest_metadata(instance, asset_key(dataset, "searched_cell"), None)
    return RecordedResults(
        cnn_rows=cnn_rows,
        gan_rows=gan_rows,
        gan_extractor=str(latest_metadata(instance, asset_key(dataset, "trained_gan"), None).get("fid_extractor", "?")),
        extended=latest_metadata(instance, asset_key(dataset, "extended_classifier"), None),
        classifier=latest_metadata(instance, asset_key(dataset, "classifier"), None),
        gates={n: gate_status(instance, dataset, n) for n in class_names},
        settings=settings,
        search_comparison={"aging": cell["val_accuracy"], "random": cell["random_search_val_accuracy"]}
        if "random_search_val_accuracy" in cell
        else None,
        departures=PROFILE_DEPARTURES.get(run_profile(context, entry)[0], []),
        data_efficiency=latest_metadata(instance, asset_key(dataset, "data_efficiency"), None).get("study"),
    )


def report_metadata(report: Report, inputs: ReportInputs, path: Path) -> dict:
    """The report as UI markdown with small previews, and its headline numbers with their provenance."""
    scores = inputs.extractor_scores
    return {
        "report": dg.MetadataValue.md(report.preview_markdown(path.parent)),
        "report_path": dg.MetadataValue.path(str(path)),
        "figures": dg.MetadataValue.path(str(path.parent / "figures")),
        "sections": [title for title, _ in report.sections],
        "num_shortfalls": len(inputs.shortfalls),
        **{ROW_KEYS[row.name]: round(row.accuracy, 4) for row in inputs.accuracy_rows},
        **{f"fid_{s.extractor}": round(s.fid.value, 4) for s in scores},
        **{f"kid_{s.extractor}": round(s.kid.value, 5) for s in scores},
        **{f"is_{s.extractor}": round(s.inception_score.value, 4) for s in scores if s.inception_score is not None},
        **{
            f"class_agreement_{s.extractor}": round(s.class_agreement.value, 4)
            for s in scores
            if s.class_agreement is not None
        },
        **judge_metadata(inputs),
        # Every number with its name (metric_count_extractor), sample counts, subsets and resize mode.
        "metrics_provenance": dg.MetadataValue.json([row for s in scores for row in s.rows()]),
    }


def judge_metadata(inputs: ReportInputs) -> dict:
    """GAN-test, the steady judge of whether the generator follows its class: the real-only control
    classifier's agreement with the conditioning class, with its interval over seeds and images."""
    results = inputs.extension
    if results is None or results.agreement is None:
        return {}
    agreement = results.agreement
    return {
        "class_agreement_real_classifier": round(agreement.value, 4),
        "class_agreement_real_classifier_ci_low": round(agreement.low, 4),
        "class_agreement_real_classifier_ci_high": round(agreement.high, 4),
        "class_agreement_real_classifier_chance": results.agreement_chance,
        "class_agreement_real_classifier_interval": agreement.method,
        **({"tstr_chance": results.tstr_chance} if results.tstr_chance is not None else {}),
        **({"accuracy_gain": results.gain.value} if results.gain is not None else {}),
        **({"num_synthetic_images_added": results.num_added}),
    }


def build_report_asset(entry: DatasetEntry) -> dg.AssetsDefinition:
    dataset = entry.name
    names = ("image_splits", "augmented_dataset", "synthetic_dataset", "feature_extractors", "classifier")
    ins = data_ins(dataset, *names, "extended_classifier")
    read_from_metadata = ("baseline_classifiers", "optimizer_comparison", "gan_baselines", "trained_gan")
    options = asset_options(entry, GROUP, network=True, kinds=("markdown",))

    deps = [class_set_key(dataset), *(asset_key(dataset, n) for n in read_from_metadata)]

    @dg.asset(name="metric_reports", ins=ins, deps=deps, **options)
    def metric_reports(
        context: dg.AssetExecutionContext,
        config: ReportConfig,
        compute: ComputeResource,
        feature_extractor: FeatureExtractorResource,
        image_splits: dict,
        augmented_dataset: dict,
        synthetic_dataset: dict,
        feature_extractors: ModelWeights,
        classifier: ModelWeights,
        extended_classifier: ModelWeights,
    ) -> dg.MaterializeResult:
        """The comparison report of every model against the baselines and the source, with metrics and settings."""
        started = time.perf_counter()
        gan_run = require_current_generator(context.instance, dataset, sorted(synthetic_dataset))
        device, data = compute.torch_device(), assemble(augmented_dataset, image_splits)
        used = {**config.model_dump(), "extractors": ", ".join(feature_extractor.available())}
        inputs = report_inputs(
            dataset,
            data,
            image_splits,
            augmented_dataset,
            {name: images.images for name, images in synthetic_dataset.items()},
            extractors={
                n: feature_extractor.serve(n, feature_extractors, device) for n in feature_extractor.available()
            },
            models={
                label: stored_classifier(weights.state_dict, weights.spec)
                for label, weights in (("real only", classifier), ("real + synthetic", extended_classifier))
            },
            recorded=recorded_results(context, entry, data.class_names, synthetic_dataset, used),
            settings=ReportSettings(config.kid_subsets, config.kid_subset_size, config.is_splits, config.seed),
            inception_status=feature_extractor.inception_status(),
            device=device,
            precision=compute.precision(),
            log=context.log.info,
        )
        report = build_report(inputs)
        # Full-size figures go to files, one folder per run (and the newest copied one level up);
        # the UI's markdown carries small previews that name their full-size files.
        folder = Path(config.output_dir) if config.output_dir else data_home() / "reports" / dataset
        path = report.write(folder / context.run_id)
        report.write(folder)
        metadata = report_metadata(report, inputs, path)
        metadata.update({"trained_gan_run": gan_run, "wall_seconds": round(time.perf_counter() - started, 1)})
        return dg.MaterializeResult(metadata=metadata)

    return metric_reports
