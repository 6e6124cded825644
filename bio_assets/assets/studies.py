"""The studies group: the data-efficiency study, opt-in. Automation never starts it (its rebuild
policy is ``manual``) and ``bio-assets materialize`` leaves it out unless selected: it repeats the
CNN search, the GAN training and every classifier once per training size."""

import time

import dagster as dg
from pydantic import Field

from bio_assets.assets.common import asset_options, data_ins, run_profile
from bio_assets.assets.gan_search import gan_precision
from bio_assets.assets.metadata import png_markdown
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.profiles import profile_help, resolve_settings
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.reporting.data_efficiency import learning_curve, study_table
from bio_assets.core.studies.data_efficiency import SizeResult, StudyRuntime, run_study
from bio_assets.core.studies.settings import STUDY_FIELDS, study_settings
from resources.compute import ComputeResource
from resources.search_executor import SearchExecutorResource

GROUP = "studies"


class DataEfficiencyConfig(dg.Config):
    sizes: list[int] | None = Field(
        default=None,
        description="real training images per class to study, 0: all of them "
        f"({profile_help('data_efficiency', 'sizes')})",
    )
    seeds: int | None = Field(
        default=None, description=f"seeds of every classifier training ({profile_help('data_efficiency', 'seeds')})"
    )
    epochs: int | None = Field(
        default=None,
        description="the most passes of every classifier training; validation picks the pass kept "
        f"({profile_help('data_efficiency', 'epochs')})",
    )
    fitness_repeats: int | None = Field(
        default=None,
        description="trainings per search candidate, their mean validation accuracy its fitness "
        f"({profile_help('data_efficiency', 'fitness_repeats')})",
    )
    select_on_validation: bool | None = Field(
        default=None,
        description="keep the pass with the best validation accuracy, not the last "
        f"({profile_help('data_efficiency', 'select_on_validation')})",
    )
    min_synthetic_confidence: float | None = Field(
        default=None,
        description="keep a synthetic image only where a real-only model, temperature-scaled on validation, gives "
        f"its class this probability; 0: keep all ({profile_help('data_efficiency', 'min_synthetic_confidence')})",
    )
    baselines: list[str] | None = Field(
        default=None,
        description="classic CNNs beside the searched one; validation picks the best "
        f"({profile_help('data_efficiency', 'baselines')})",
    )
    seed: int = 0


def study_rows(results: list[SizeResult]) -> list[dict]:
    """The study as JSON rows (metadata), with the validation numbers every choice was made on."""
    rows = []
    for r in results:
        arms = {"searched": r.searched, "extended": r.extended, "control": r.control, "baseline": r.baseline}
        row = {
            "size": r.size, "train_per_class": r.train_per_class, "cell": r.cell, "macro": r.macro,
            **{f"{k}_test": [round(v.value, 4), round(v.low, 4), round(v.high, 4)] for k, v in arms.items()},
            "gain": None if r.gain is None else [round(r.gain.value, 4), round(r.gain.low, 4), round(r.gain.high, 4)],
            "best_baseline": r.best_baseline, "baseline_val_accuracy": r.baseline_val_accuracy,
            "baselines_test": {k: round(v.value, 4) for k, v in r.baselines.items()},
            "val_accuracy": r.val_accuracy,
            "synthetic": {"generated": r.synthetic_generated, "kept": r.synthetic_kept, "added": r.synthetic_added},
            "filter_temperature": r.filter_temperature, "seconds": r.seconds,
        }  # fmt: skip
        rows.append(row)
    return rows


def build_study_assets(entry: DatasetEntry) -> list[dg.AssetsDefinition]:
    dataset = entry.name
    ins = {**data_ins(dataset, "image_splits"), **data_ins(dataset, "generator", "discriminator")}

    @dg.asset(name="data_efficiency", ins=ins, **asset_options(entry, GROUP, network=True, kinds=("markdown",)))
    def data_efficiency(
        context: dg.AssetExecutionContext,
        config: DataEfficiencyConfig,
        compute: ComputeResource,
        search_executor: SearchExecutorResource,
        image_splits: dict,
        generator: ModelWeights,
        discriminator: ModelWeights,
    ) -> dg.MaterializeResult:
        """Opt-in: real only against real + synthetic and the best classic baseline at several training sizes."""
        started = time.perf_counter()
        profile, source = run_profile(context, entry)

        def setting(asset: str, field: str) -> object:
            return resolve_settings({field: None}, profile, asset, dataset_settings=entry.settings)[field]

        sizes = config.sizes if config.sizes is not None else setting("data_efficiency", "sizes")
        overrides = {k: getattr(config, k) for k in STUDY_FIELDS if getattr(config, k) is not None}
        settings = study_settings(
            setting, sizes, generator=generator.spec["genotype"], discriminator=discriminator.spec["genotype"],
            profile=profile, seed=config.seed, **overrides,
        )  # fmt: skip
        with search_executor.runtime(dataset, compute, precision=compute.precision()) as search:
            runtime = StudyRuntime(
                search, compute.torch_device(), compute.precision(), gan_precision(compute), log=context.log.info
            )
            results = run_study(image_splits, settings, runtime)
        rows = study_rows(results)
        return dg.MaterializeResult(
            metadata={
                "learning_curve": png_markdown(learning_curve(rows), "test accuracy by real training images per class"),
                "study_table": dg.MetadataValue.md(study_table(rows)),
                "study": dg.MetadataValue.json(rows),
                "generator_genotype": generator.spec["genotype"],
                "discriminator_genotype": discriminator.spec["genotype"],
                "seeds": settings.seeds,
                "classifier_epochs": settings.classifier.epochs,
                "select_on_validation": settings.classifier.select_on_validation,
                "fitness_repeats": settings.cell_search.fitness_repeats,
                "min_synthetic_confidence": settings.min_synthetic_confidence,
                "baselines": ", ".join(settings.baselines),
                "wall_seconds": round(time.perf_counter() - started, 1),
                "profile": profile,
                "profile_source": source,
                **{f"compute_{k}": v for k, v in compute.describe().items()},
            }
        )

    return [data_efficiency]
