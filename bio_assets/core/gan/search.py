"""The two-stage GAN architecture search: stage 1 evolves generators against a fixed
discriminator, stage 2 evolves discriminators with the best generator. Fitness is -FID.

Weight inheritance, as the source's section 3.1.2: the first cycle's random population trains
from scratch (stage 2: with the best generator's weights); every later candidate starts from the
weights of the best candidate so far wherever a tensor's name and shape match (the source copies
the best network's weights into the next cycle's candidates); the rest keeps its seeded init.
A candidate's cached FID is served only to a candidate that starts from the same weights.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bio_assets.core.cnn.training import Precision
from bio_assets.core.gan.genotypes import MAX_NODES, MIN_NODES, GanGenotype
from bio_assets.core.gan.networks import GanNetworkSpec, build_searched
from bio_assets.core.gan.scoring import FidScorer
from bio_assets.core.gan.training import GanImages, GanTrainParams, train_gan
from bio_assets.core.io.storage import load_weights, save_weights
from bio_assets.core.metrics.extractors import build_extractor_model, domain_extractor
from bio_assets.core.metrics.fid import FeatureStatistics
from bio_assets.core.search.cache import EvaluationCache, settings_hash
from bio_assets.core.search.evolution import Evaluation, EvolutionParams, SearchResult, SearchSpace, run_search
from bio_assets.core.search.runtime import SearchRuntime
from bio_assets.core.search.shipping import ShippedTensors, ship
from bio_assets.core.seeding import derive_seed

STAGES = ("generator", "discriminator")


def gan_space(role: str, mutation_probability: float, nodes: tuple[int, int] = (MIN_NODES, MAX_NODES)) -> SearchSpace:
    return SearchSpace(
        name=role,
        random=lambda rng: GanGenotype.random(rng, role, nodes),
        mutate=lambda genotype, rng: genotype.mutate(rng, mutation_probability, nodes),
        parse=lambda code: GanGenotype.parse(code, role),
        code=lambda genotype: genotype.code,
        key=lambda genotype: genotype.key,
    )


def inherit(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> float:
    """Copy every tensor whose name and shape match; returns the fraction of ``model``'s entries copied."""
    own = model.state_dict()
    matching = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matching, strict=False)
    return len(matching) / max(len(own), 1)


def build_seeded_gan(spec: GanNetworkSpec, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_searched(spec)


@dataclass(frozen=True)
class GanSearchData:
    """GAN training images, real reference statistics for FID, and the extractor that made them."""

    train: GanImages
    reference: FeatureStatistics
    extractor_spec: dict
    extractor_state: dict[str, torch.Tensor]
    extractor_name: str
    version: str  # changes whenever the images or the extractor change
    reference_counts: tuple[int, ...] | None = None  # real reference images per class: FID samples follow them

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    def resolve(self) -> GanSearchData:
        return self

    def shipped(self, folder: Path) -> ShippedGanSearchData:
        """The images, reference statistics and extractor weights written once under ``folder``."""
        tensors = {
            "images": self.train.images, "labels": self.train.labels,
            "reference_mean": torch.from_numpy(np.ascontiguousarray(self.reference.mean)),
            "reference_covariance": torch.from_numpy(np.ascontiguousarray(self.reference.covariance)),
            **{f"extractor.{k}": v for k, v in self.extractor_state.items()},
        }  # fmt: skip
        return ShippedGanSearchData(
            ship(tensors, folder), self.train.num_classes, self.reference.count, self.extractor_spec,
            self.extractor_name, self.version, self.reference_counts,
        )  # fmt: skip


@dataclass(frozen=True)
class ShippedGanSearchData:
    """A :class:`GanSearchData` by reference: what a worker process reads once (``core.search.shipping``)."""

    tensors: ShippedTensors
    num_classes: int
    reference_count: int
    extractor_spec: dict
    extractor_name: str
    version: str
    reference_counts: tuple[int, ...] | None = None

    def resolve(self) -> GanSearchData:
        t = self.tensors.load()
        reference = FeatureStatistics(
            t["reference_mean"].numpy(), t["reference_covariance"].numpy(), self.reference_count
        )
        extractor = {k.removeprefix("extractor."): v for k, v in t.items() if k.startswith("extractor.")}
        return GanSearchData(
            GanImages(t["images"], t["labels"], self.num_classes), reference, self.extractor_spec, extractor,
            self.extractor_name, self.version, self.reference_counts,
        )  # fmt: skip


@dataclass(frozen=True)
class GanSearchRequest:
    stage: str  # "generator" or "discriminator": which network evolves
    evolution: EvolutionParams
    training: GanTrainParams
    fixed_generator: str  # the other network's genotype (stage 1: unused placeholder allowed)
    fixed_discriminator: str
    generator_width: int
    discriminator_width: int
    image_size: int
    fid_samples: int
    min_nodes: int = MIN_NODES
    max_nodes: int = MAX_NODES

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.fid_samples < 2:
            raise ValueError(f"fid_samples must be >= 2, got {self.fid_samples}")

    def candidate_settings(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("evolution",)}


@dataclass(frozen=True)
class GanCandidateEvaluator:
    """Picklable ``code -> result``: trains the pair a genotype code stands for and scores it by FID."""

    data: GanSearchData | ShippedGanSearchData
    request: GanSearchRequest
    weights_dir: str
    inherit_from: str = ""  # weights file of the best candidate so far ("" before the first result)
    device: str = "cpu"
    precision: Precision = Precision()
    threads: int = 0

    @property
    def cache_context(self) -> str:
        """Which weights this evaluator's candidates start from: part of their cache key, so a
        genotype that starts from other weights is trained again (run_search reads it)."""
        return Path(self.inherit_from).stem if self.inherit_from else ""

    def specs(self, code: str) -> tuple[GanNetworkSpec, GanNetworkSpec]:
        r = self.request
        generator = code if r.stage == "generator" else r.fixed_generator
        discriminator = code if r.stage == "discriminator" else r.fixed_discriminator
        num_classes = self.data.num_classes
        return (
            GanNetworkSpec("generator", generator, r.generator_width, r.image_size, num_classes),
            GanNetworkSpec(
                "discriminator",
                discriminator,
                r.discriminator_width,
                r.image_size,
                num_classes,
                auxiliary_classifier=r.training.auxiliary_classifier_weight > 0,
            ),
        )

    def __call__(self, code: str) -> dict:
        if self.threads:
            torch.set_num_threads(self.threads)
        started = time.perf_counter()
        device, data = torch.device(self.device), self.data.resolve()
        g_spec, d_spec = self.specs(code)
        seed = derive_seed(self.request.training.seed, "gan-candidate", self.request.stage, code)
        generator, discriminator = build_seeded_gan(g_spec, seed), build_seeded_gan(d_spec, seed + 1)
        inherited = {"generator": 0.0, "discriminator": 0.0}
        if self.inherit_from:
            tensors, _ = load_weights(Path(self.inherit_from))
            for name, model in (("generator", generator), ("discriminator", discriminator)):
                inherited[name] = inherit(
                    model, {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(name + ".")}
                )
        report = train_gan(
            generator,
            discriminator,
            data.train,
            replace(self.request.training, seed=seed),
            device=device,
            precision=self.precision,
        )
        extractor_model = build_extractor_model(data.extractor_spec)
        extractor_model.load_state_dict(data.extractor_state)
        extractor = domain_extractor(data.extractor_name, extractor_model, data.extractor_spec["input_size"], device)
        scorer = FidScorer(
            extractor,
            data.reference,
            self.request.image_size,
            self.request.fid_samples,
            data.train.num_classes,
            seed,
            data.reference_counts,
        )
        fid = scorer(report.sampler)
        if not np.isfinite(fid.value):
            raise ValueError(f"{code}: FID is {fid.value}")
        weights = (
            Path(self.weights_dir)
            / f"{settings_hash({'code': code, 'seed': seed, 'inherit': self.inherit_from})}.safetensors"
        )
        tensors = {
            **{f"generator.{k}": v for k, v in report.sampler.state_dict().items()},
            **{f"discriminator.{k}": v for k, v in discriminator.state_dict().items()},
        }
        save_weights(
            weights, tensors, {"generator": g_spec.to_json(), "discriminator": d_spec.to_json(), "fid": fid.to_json()}
        )
        return {
            "fitness": -fid.value,
            "fid": fid.value,
            "weights": str(weights),
            "inherited_generator": inherited["generator"],
            "inherited_discriminator": inherited["discriminator"],
            "iterations_per_second": report.iterations_per_second,
            "seconds": time.perf_counter() - started,
        }


def _initial_weights_file(state_dir: Path, state: Mapping[str, torch.Tensor]) -> Path:
    """``state`` saved once as ``state_dir/initial/<content hash>.safetensors``."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    path = state_dir / "initial" / f"{digest.hexdigest()[:16]}.safetensors"
    if not path.exists():
        save_weights(path, {name: tensor.detach().cpu() for name, tensor in state.items()}, {})
    return path


@dataclass(frozen=True)
class GanSearchRun:
    result: SearchResult
    candidate_settings_hash: str
    state_path: Path

    @property
    def best_weights(self) -> Path:
        return Path(self.result.best.metrics["weights"])


def search_gan(
    data: GanSearchData,
    request: GanSearchRequest,
    runtime: SearchRuntime,
    *,
    initial_state: Mapping[str, torch.Tensor] | None = None,
) -> GanSearchRun:
    """One stage of the search; resumable from ``runtime.state_dir``. ``initial_state``: the weights
    every candidate starts from where names and shapes match, keys prefixed ``generator.`` or
    ``discriminator.`` (stage 2: the best generator's). Candidates in worker processes read them
    from one file under the state folder, named by their content."""
    precision, state_dir = runtime.precision, Path(runtime.state_dir)
    initial_weights = str(_initial_weights_file(state_dir, initial_state)) if initial_state else ""
    candidate_hash = settings_hash(
        {**request.candidate_settings(), "precision": str(precision), "initial": initial_weights}
    )
    run_hash = settings_hash(
        {
            "candidate": candidate_hash,
            "evolution": asdict(request.evolution),
            "workers": runtime.workers,
            "ordering": runtime.ordering,
        }
    )
    evaluator = GanCandidateEvaluator(
        data.shipped(state_dir / "data") if runtime.ships_data else data,
        request,
        # One folder per candidate settings: weights made under other settings are never inherited.
        str(state_dir / f"{request.stage}-weights" / candidate_hash),
        initial_weights,
        runtime.device,
        precision,
        runtime.threads_per_worker,
    )

    def bind(history: list[Evaluation], candidate: dict) -> GanCandidateEvaluator:
        if candidate["index"] < request.evolution.population_size or not history:
            return evaluator  # the first cycle: from scratch (or initial_weights)
        best = max(history, key=lambda e: (e.fitness, -e.index))
        source = best.metrics.get("weights", "")
        return replace(evaluator, inherit_from=source if source and Path(source).exists() else initial_weights)

    cache = EvaluationCache(state_dir / f"gan-{request.stage}-cache.json", f"{candidate_hash}/{data.version}")
    state_path = state_dir / f"gan-{request.stage}-state-{run_hash}-{data.version}.json"
    space = gan_space(request.stage, request.evolution.mutation_probability, (request.min_nodes, request.max_nodes))
    result = run_search(
        space,
        evaluator,
        request.evolution,
        runtime.executor,
        workers=runtime.workers,
        cache=cache,
        state_path=state_path,
        on_evaluation=runtime.on_evaluation,
        ordering=runtime.ordering,
        bind=bind,
    )
    return GanSearchRun(result, candidate_hash, state_path)
