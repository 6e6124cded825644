"""The cnn_search group: micro (cell) search and macro (network) search by aging evolution."""

import time

import dagster as dg
import numpy as np
from pydantic import Field

from bio_assets.assets.common import RunSettings, asset_options, config_values, data_ins, run_settings
from bio_assets.assets.data import class_set_key
from bio_assets.assets.metadata import png_markdown
from bio_assets.core.cnn.dataset import assemble
from bio_assets.core.cnn.genotypes import CellGenotype, MacroGenotype
from bio_assets.core.cnn.search import CnnSearchRequest, CnnSearchRun, search_cnn
from bio_assets.core.cnn.training import TrainParams
from bio_assets.core.profiles import profile_help
from bio_assets.core.registry import DatasetEntry
from bio_assets.core.reporting.plots import fitness_plot
from bio_assets.core.search.evolution import Evaluation, EvolutionParams
from bio_assets.core.search.outcome import SearchOutcome
from resources.compute import ComputeResource
from resources.image_dataset import ImageDatasetResource
from resources.search_executor import SearchExecutorResource

GROUP = "cnn_search"
PROFILE_FIELDS = ("population_size", "cycles", "sample_size", "epochs", "input_size", "fitness_repeats")


class SearchConfig(dg.Config):
    population_size: int | None = Field(
        default=None,
        description="random architectures before breeding; unset: the dataset profile's value "
        f"({profile_help('searched_cell', 'population_size', 'macro_architecture')})",
    )
    cycles: int | None = Field(
        default=None,
        description="children bred after the population is full "
        f"({profile_help('searched_cell', 'cycles', 'macro_architecture')})",
    )
    sample_size: int | None = Field(
        default=None,
        description=f"tournament size ({profile_help('searched_cell', 'sample_size', 'macro_architecture')})",
    )
    epochs: int | None = Field(
        default=None,
        description=f"training epochs per candidate ({profile_help('searched_cell', 'epochs', 'macro_architecture')})",
    )
    input_size: int | None = Field(
        default=None,
        description="candidates train at this size; 0: the dataset resolution "
        f"({profile_help('searched_cell', 'input_size', 'macro_architecture')})",
    )
    fitness_repeats: int | None = Field(
        default=None,
        description="trainings per candidate, each from its own seed, their mean validation accuracy its fitness: "
        "one training on a few dozen validation images is mostly seed noise "
        f"({profile_help('searched_cell', 'fitness_repeats', 'macro_architecture')})",
    )
    mutation_probability: float = 0.05
    strategy: str = Field(default="aging", description="aging (regularized evolution) or random (same budget)")
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    seed: int = 0
    top_k: int = 10

    def request(self, values: RunSettings, searching: str, **space) -> CnnSearchRequest:
        evolution = EvolutionParams(
            values["population_size"],
            values["cycles"],
            min(values["sample_size"], values["population_size"]),
            self.mutation_probability,
            self.strategy,
            self.seed,
        )
        training = TrainParams(
            epochs=values["epochs"],
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            input_size=values["input_size"] or None,
            seed=self.seed,
        )
        return CnnSearchRequest(
            searching=searching, evolution=evolution, training=training, fitness_repeats=values["fitness_repeats"],
            **space,
        )  # fmt: skip


class CellSearchConfig(SearchConfig):
    compare_random: bool | None = Field(
        default=None,
        description="also run random search at the same budget and record both bests (unset: the profile's, "
        f"{profile_help('searched_cell', 'compare_random')})",
    )
    min_nodes: int = 3
    max_nodes: int = 6
    channels: int = Field(default=16, description="channels of the micro-search network (paper 16)")


class MacroSearchConfig(SearchConfig):
    channels: int = Field(default=32, description="channels of the macro-search network (paper 32)")


def evaluation_logger(context: dg.AssetExecutionContext, started: float, score=lambda e: f"val acc {e.fitness:.4f}"):
    def log(evaluation: Evaluation, done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total - done)
        source = "cache" if evaluation.cached else f"{evaluation.seconds:.1f} s"
        context.log.info(
            f"[{done}/{total}] {evaluation.code}: {score(evaluation)} ({source}); {total - done} left, ETA {eta:.0f} s"
        )

    return log


def top_k_table(run: CnnSearchRun, k: int, describe) -> dg.TableMetadataValue:
    """The k best distinct genotypes, like the source's tables 2.5 and 2.7."""
    best, seen = [], set()
    for e in sorted(run.result.history, key=lambda e: (-e.fitness, e.index)):
        if e.key not in seen:
            seen.add(e.key)
            best.append(e)
    rows = [
        dg.TableRecord(
            {
                "rank": r,
                "evaluation": e.index + 1,
                "accuracy": round(e.fitness, 4),
                "macro_f1": round(float(e.metrics.get("val_macro_f1", float("nan"))), 4),
                "genotype": e.code,
                "size": describe(e.code),
            }
        )
        for r, e in enumerate(best[:k], start=1)
    ]
    columns = [
        dg.TableColumn(n, t)
        for n, t in (
            ("rank", "int"),
            ("evaluation", "int"),
            ("accuracy", "float"),
            ("macro_f1", "float"),
            ("genotype", "string"),
            ("size", "string"),
        )
    ]
    return dg.MetadataValue.table(rows, schema=dg.TableSchema(columns=columns))


def search_metadata(
    run: CnnSearchRun,
    outcome: SearchOutcome,
    request: CnnSearchRequest,
    *,
    k: int,
    describe,
    started: float,
    compute: ComputeResource,
) -> dict:
    best = run.result.best
    return {
        "genotype": best.code,
        "val_accuracy": best.fitness,
        "val_macro_f1": float(best.metrics.get("val_macro_f1", float("nan"))),
        "num_evaluations": len(run.result.history),
        "num_trainings": run.result.num_trainings,
        "top_k": top_k_table(run, k, describe),
        "fitness_plot": png_markdown(
            fitness_plot(outcome.fitness, outcome.cached, f"{request.searching} search ({request.evolution.strategy})"),
            "fitness over evaluations",
        ),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "strategy": request.evolution.strategy,
        "population_size": request.evolution.population_size,
        "cycles": request.evolution.cycles,
        "epochs_per_candidate": request.training.epochs,
        "candidate_input_size": request.training.input_size or "dataset resolution",
        "data_version": outcome.data_version,
        "candidate_settings_hash": run.candidate_settings_hash,
        "state_file": dg.MetadataValue.path(str(run.state_path)),
        **{f"compute_{k}": v for k, v in compute.describe().items()},
    }


def strategy_comparison(aging: CnnSearchRun, random: CnnSearchRun) -> dict:
    """Aging evolution's best validation accuracy against random search's at the same budget, and
    both best-so-far curves (one search each: an anecdote, not a significance test)."""
    curves = {
        name: np.maximum.accumulate([e.fitness for e in run.result.history])
        for name, run in (("aging", aging), ("random", random))
    }
    every = max(len(curves["aging"]) // 10, 1)
    rows = [
        dg.TableRecord({"evaluations": i + 1, "aging_best": round(float(curves["aging"][i]), 4),
                        "random_best": round(float(curves["random"][i]), 4)})
        for i in range(len(curves["aging"])) if (i + 1) % every == 0 or i + 1 == len(curves["aging"])
    ]  # fmt: skip
    schema = dg.TableSchema(
        columns=[dg.TableColumn("evaluations", "int")]
        + [dg.TableColumn(n, "float") for n in ("aging_best", "random_best")]
    )
    return {
        "random_search_val_accuracy": random.result.best.fitness,
        "random_search_genotype": random.result.best.code,
        "random_search_num_trainings": random.result.num_trainings,
        "aging_minus_random": round(aging.result.best.fitness - random.result.best.fitness, 4),
        "strategy_curves": dg.MetadataValue.table(rows, schema=schema),
    }


def build_cnn_search_assets(entry: DatasetEntry) -> list[dg.AssetsDefinition]:
    dataset = entry.name
    inputs = data_ins(dataset, "augmented_dataset", "image_splits")
    common = asset_options(entry, GROUP, network=True)

    @dg.asset(name="searched_cell", ins=inputs, deps=[class_set_key(dataset)], **common)
    def searched_cell(
        context: dg.AssetExecutionContext,
        config: CellSearchConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        search_executor: SearchExecutorResource,
        augmented_dataset: dict,
        image_splits: dict,
    ) -> dg.MaterializeResult:
        """The best cell found by aging evolution on validation accuracy (micro search, one cell)."""
        started = time.perf_counter()
        settings = run_settings(
            context,
            image_dataset.entry(dataset),
            "searched_cell",
            config_values(config, (*PROFILE_FIELDS, "compare_random")),
        )
        request = config.request(
            settings,
            "cell",
            channels=config.channels,
            min_nodes=config.min_nodes,
            max_nodes=config.max_nodes,
        )
        data = assemble(augmented_dataset, image_splits).for_search()
        logger = evaluation_logger(context, started)
        with search_executor.runtime(dataset, compute, precision=compute.precision(), on_evaluation=logger) as rt:
            run = search_cnn(data, request, rt)
            # The same budget, seed and evaluation cache: a genotype both strategies meet is trained once.
            control = search_cnn(data, request.with_strategy("random"), rt) if settings["compare_random"] else None
        outcome = SearchOutcome.from_result(run.result, run.candidate_settings_hash, data.version)
        metadata = search_metadata(
            run,
            outcome,
            request,
            k=config.top_k,
            describe=lambda code: f"{CellGenotype.parse(code).nodes} nodes",
            started=started,
            compute=compute,
        )
        if control is not None:
            metadata.update(strategy_comparison(run, control))
        nb201 = CellGenotype.parse(run.result.best.code).to_nb201()
        return dg.MaterializeResult(value=outcome, metadata={**metadata, "nb201": nb201, **settings.metadata()})

    @dg.asset(
        name="macro_architecture",
        ins={**inputs, **data_ins(dataset, "searched_cell")},
        **common,
    )
    def macro_architecture(
        context: dg.AssetExecutionContext,
        config: MacroSearchConfig,
        compute: ComputeResource,
        image_dataset: ImageDatasetResource,
        search_executor: SearchExecutorResource,
        augmented_dataset: dict,
        image_splits: dict,
        searched_cell: SearchOutcome,
    ) -> dg.MaterializeResult:
        """The best number of cells and pooling positions N-[P] for the searched cell (macro search)."""
        started = time.perf_counter()
        values = config_values(config, PROFILE_FIELDS)
        settings = run_settings(context, image_dataset.entry(dataset), "macro_architecture", values)
        request = config.request(
            settings,
            "macro",
            channels=config.channels,
            fixed_cell=searched_cell.best_code,
        )
        data = assemble(augmented_dataset, image_splits).for_search()
        logger = evaluation_logger(context, started)
        with search_executor.runtime(dataset, compute, precision=compute.precision(), on_evaluation=logger) as rt:
            run = search_cnn(data, request, rt)
        outcome = SearchOutcome.from_result(run.result, run.candidate_settings_hash, data.version)
        metadata = search_metadata(
            run,
            outcome,
            request,
            k=config.top_k,
            describe=lambda code: f"{MacroGenotype.parse(code).cells} cells",
            started=started,
            compute=compute,
        )
        return dg.MaterializeResult(
            value=outcome, metadata={**metadata, "cell": searched_cell.best_code, **settings.metadata()}
        )

    return [searched_cell, macro_architecture]
