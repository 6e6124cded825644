"""The reports group: one comparison report per dataset, in the UI and as a file."""

import time
from pathlib import Path

import dagster as dg
import numpy as np
import torch
from pydantic import Field

from bio_assets.assets.common import asset_options, data_ins, run_profile
from bio_assets.assets.metadata import latest_metadata
from bio_assets.assets.partitions import asset_key
from bio_assets.assets.synthesis import require_current_generator
from bio_assets.checks.gates import gate_status
from bio_assets.core.cnn.architectures import load_classifier
from bio_assets.core.cnn.baselines import BASELINES
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.cnn.training import predict_probabilities
from bio_assets.core.gan.baselines import GAN_BASELINES, SEARCHED_SOURCE_FID
from bio_assets.core.gan.scoring import resize_uint8
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.classification import roc_report
from bio_assets.core.metrics.synthetic import LabelledSet, score_synthetic
from bio_assets.core.profiles import PROFILE_DEPARTURES
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.reporting import source
from bio_assets.core.reporting.report import AccuracyRow, ReportInputs, build_report
from bio_assets.core.reporting.statistics import compare_class, wilson_interval
from bio_assets.core.seeding import derive_seed
from resources.compute import ComputeResource
from resources.feature_extractor import FeatureExtractorResource
from resources.paths import data_home

GROUP = "reports"
ROW_KEYS = {
    "real only": "real_only_accuracy",
    "real only, equal-settings control": "control_accuracy",
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


def model_rows(instance: dg.DagsterInstance, dataset: str) -> tuple[list[dict], list[dict]]:
    """CNN rows (searched, extended, each baseline) and GAN rows (searched, each baseline) from recorded metadata."""
    fields = ("test_accuracy", "test_accuracy_std", "test_macro_f1", "epochs")
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
    for name, baseline in GAN_BASELINES.items():
        meta = latest_metadata(instance, asset_key(dataset, "gan_baselines"), name)
        gan.append(
            {
                "model": name,
                **{f: meta[f] for f in ("fid", "iterations") if f in meta},
                "source_fid": baseline.source_fid.get(15_000, float("nan")),
                "note": baseline.source_note,
            }
        )
    return cnn, gan


def build_report_asset(entry: DatasetEntry) -> dg.AssetsDefinition:
    dataset = entry.name
    names = ("image_splits", "augmented_dataset", "synthetic_dataset", "feature_extractors", "classifier")
    ins = data_ins(dataset, *names, "extended_classifier")
    read_from_metadata = ("baseline_classifiers", "optimizer_comparison", "gan_baselines", "trained_gan")
    options = asset_options(entry, GROUP, network=True, kinds=("markdown",))

    @dg.asset(name="metric_reports", ins=ins, deps=[asset_key(dataset, n) for n in read_from_metadata], **options)
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
        data = assemble(augmented_dataset, image_splits)
        gan_run = require_current_generator(context.instance, dataset, sorted(synthetic_dataset))
        names, device = data.class_names, compute.torch_device()
        size = int(next(iter(synthetic_dataset.values())).images.shape[1])
        real_by_class = {n: resize_uint8(torch.from_numpy(image_splits[n].train.images), size).numpy() for n in names}
        fake_classes = [n for n in names if n in synthetic_dataset]
        real = LabelledSet(
            torch.from_numpy(np.concatenate([real_by_class[n] for n in names])),
            np.concatenate([np.full(len(real_by_class[n]), i) for i, n in enumerate(names)]),
        )
        fake = LabelledSet(
            torch.from_numpy(np.concatenate([synthetic_dataset[n].images for n in fake_classes])),
            np.concatenate([np.full(len(synthetic_dataset[n]), names.index(n)) for n in fake_classes]),
        )
        scores = []
        for name in feature_extractor.available():
            extractor = feature_extractor.serve(name, feature_extractors, device)
            scores.append(
                score_synthetic(
                    extractor,
                    real,
                    fake,
                    class_names=names,
                    rng=np.random.default_rng(derive_seed(config.seed, "kid", name)),
                    kid_subsets=config.kid_subsets,
                    kid_subset_size=config.kid_subset_size,
                    is_splits=config.is_splits,
                )
            )
            context.log.info(
                f"{name}: FID {scores[-1].fid.value:.3f}, KID {scores[-1].kid.value:.4f} ({scores[-1].seconds:.1f} s)"
            )
        comparisons = [
            compare_class(
                n,
                real_by_class[n],
                synthetic_dataset[n].images,
                np.random.default_rng(derive_seed(config.seed, "kl", n)),
            )
            for n in fake_classes
        ]

        accuracy_rows, roc = [], {}
        for label, weights in (("real only", classifier), ("real + synthetic", extended_classifier)):
            model, _ = load_classifier(weights.state_dict, weights.spec)
            probabilities = predict_probabilities(
                model.to(device), data.test.images, device, precision=compute.precision()
            )
            correct = int((probabilities.argmax(1) == data.test.labels.numpy()).sum())
            accuracy_rows.append(
                AccuracyRow(
                    label,
                    correct / len(data.test.labels),
                    *wilson_interval(correct, len(data.test.labels)),
                    f"first seed, {len(data.test.labels)} test images, Wilson interval",
                )
            )
            roc[label] = roc_report(data.test.labels.numpy(), probabilities)
        extended_meta = latest_metadata(context.instance, asset_key(dataset, "extended_classifier"), None)
        if "control_accuracy" in extended_meta:
            n = len(data.test.labels)
            accuracy_rows.insert(
                1,
                AccuracyRow(
                    "real only, equal-settings control",
                    extended_meta["control_accuracy"],
                    *wilson_interval(round(extended_meta["control_accuracy"] * n), n),
                    f"trained inside extended_classifier with its epochs and optimizer; mean over seeds, {n} test "
                    "images",
                ),
            )
        if "tstr_accuracy" in extended_meta:
            n = int(extended_meta["tstr_num_test_images"])
            accuracy_rows.append(
                AccuracyRow(
                    "synthetic only (TSTR)",
                    extended_meta["tstr_accuracy"],
                    *wilson_interval(round(extended_meta["tstr_accuracy"] * n), n),
                    f"mean over seeds (std {extended_meta['tstr_accuracy_std']:.3f}), {n} test images of classes "
                    "with synthetic images",
                )
            )
        gain = (
            {
                k: extended_meta[k]
                for k in ("accuracy_gain", "accuracy_gain_ci_low", "accuracy_gain_ci_high", "accuracy_gain_interval")
            }
            if "accuracy_gain" in extended_meta
            else None
        )
        cnn_rows, gan_rows = model_rows(context.instance, dataset)
        counts = {
            n: {
                "raw": sum(len(getattr(image_splits[n], s)) for s in ("train", "val", "test")),
                "train": len(image_splits[n].train),
                "val": len(image_splits[n].val),
                "test": len(image_splits[n].test),
                "augmented": len(augmented_dataset[n]),
                "synthetic": len(synthetic_dataset.get(n, ())),
            }
            for n in names
        }
        settings = [
            (name, settings_of(context.instance, dataset, name))
            for name in (
                "searched_cell",
                "macro_architecture",
                "classifier",
                "feature_extractors",
                "generator",
                "discriminator",
                "trained_gan",
                "extended_classifier",
            )
        ]
        settings += [
            (f"synthetic_dataset [{n}]", settings_of(context.instance, dataset, "synthetic_dataset", n))
            for n in fake_classes
        ]
        settings += [
            (f"gan_baselines [{n}]", settings_of(context.instance, dataset, "gan_baselines", n)) for n in GAN_BASELINES
        ]
        settings.append(
            ("metric_reports", {**config.model_dump(), "extractors": ", ".join(feature_extractor.available())})
        )
        shown = {n: min(8, len(real_by_class[n]), len(synthetic_dataset[n])) for n in fake_classes}
        cell_meta = latest_metadata(context.instance, asset_key(dataset, "searched_cell"), None)
        search_comparison = (
            {"aging": cell_meta["val_accuracy"], "random": cell_meta["random_search_val_accuracy"]}
            if "random_search_val_accuracy" in cell_meta
            else None
        )
        profile, _ = run_profile(context, entry)
        inputs = ReportInputs(
            dataset=dataset,
            class_names=names,
            counts=counts,
            cnn_rows=cnn_rows,
            gan_rows=gan_rows,
            gan_extractor=str(
                latest_metadata(context.instance, asset_key(dataset, "trained_gan"), None).get("fid_extractor", "?")
            ),
            extractor_scores=scores,
            inception_status=feature_extractor.inception_status(),
            comparisons=comparisons,
            roc=roc,
            samples={n: (real_by_class[n][: shown[n]], synthetic_dataset[n].images[: shown[n]]) for n in fake_classes},
            accuracy_rows=accuracy_rows,
            gain=gain,
            gates={n: gate_status(context.instance, dataset, n) for n in names},
            settings=settings,
            search_comparison=search_comparison,
            departures=PROFILE_DEPARTURES.get(profile, []),
        )
        report = build_report(inputs)
        # Full-size figures go to files, one folder per run (and the newest copied one level up);
        # the UI's markdown carries small previews that name their full-size files.
        folder = Path(config.output_dir) if config.output_dir else data_home() / "reports" / dataset
        path = report.write(folder / context.run_id)
        report.write(folder)
        metadata = {
            "report": dg.MetadataValue.md(report.preview_markdown(path.parent)),
            "report_path": dg.MetadataValue.path(str(path)),
            "figures": dg.MetadataValue.path(str(path.parent / "figures")),
            "trained_gan_run": gan_run,
            "sections": [title for title, _ in report.sections],
            "num_shortfalls": len(inputs.shortfalls),
            **{ROW_KEYS[row.name]: row.accuracy for row in accuracy_rows},
            **{f"fid_{s.extractor}": round(s.fid.value, 4) for s in scores},
            **{f"kid_{s.extractor}": round(s.kid.value, 5) for s in scores},
            **{f"is_{s.extractor}": round(s.inception_score.value, 4) for s in scores if s.inception_score is not None},
            **{
                f"class_agreement_{s.extractor}": round(s.class_agreement.value, 4)
                for s in scores
                if s.class_agreement is not None
            },
            # Every number with its name (metric_count_extractor), sample counts, subsets and resize mode.
            "metrics_provenance": dg.MetadataValue.json([row for s in scores for row in s.rows()]),
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        return dg.MaterializeResult(metadata=metadata)

    return metric_reports
