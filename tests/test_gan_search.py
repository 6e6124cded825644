"""The GAN search stage on real (tiny) trainings: FID fitness, weight inheritance, resume."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from bio_assets.core.data.demo_data import DEMO_CLASSES, render_cell_image
from bio_assets.core.gan.genotypes import FIXED_DISCRIMINATOR, GanGenotype
from bio_assets.core.gan.search import GanSearchData, GanSearchRequest, search_gan
from bio_assets.core.gan.training import GanImages, GanTrainParams
from bio_assets.core.metrics.extractors import build_extractor_model, domain_extractor
from bio_assets.core.metrics.fid import FeatureStatistics
from bio_assets.core.search.evolution import EvolutionParams
from bio_assets.core.search.runtime import SearchRuntime


def tiny_search_data() -> GanSearchData:
    rng = np.random.default_rng(0)
    images = torch.from_numpy(
        np.stack([render_cell_image(name, rng, 32) for name in DEMO_CLASSES[:2] for _ in range(8)])
    )
    spec = {"kind": "biocnn1", "num_classes": 2, "width": 8, "input_size": 32}
    torch.manual_seed(0)
    model = build_extractor_model(spec)
    reference = FeatureStatistics.of(domain_extractor("biocnn1", model, 32, torch.device("cpu")).features(images))
    return GanSearchData(
        GanImages(images, torch.arange(16) // 8, 2), reference, spec, model.state_dict(), "biocnn1", "tiny-v1"
    )


def test_generator_stage_scores_by_fid_inherits_the_best_weights_and_resumes(tmp_path):
    data = tiny_search_data()
    request = GanSearchRequest(
        "generator",
        EvolutionParams(population_size=2, cycles=2, sample_size=1, mutation_probability=0.5, seed=0),
        GanTrainParams(iterations=2, batch_size=4),
        "",
        FIXED_DISCRIMINATOR,
        16,
        8,
        32,
        fid_samples=8,
        max_nodes=3,
    )
    with ThreadPoolExecutor(1) as executor:
        run = search_gan(data, request, SearchRuntime(executor, 1, tmp_path))
    history = run.result.history
    assert len(history) == 4
    assert all(e.metrics["fid"] > 0 and e.fitness == -e.metrics["fid"] for e in history)
    # Section 3.1.2: the first cycle's random population trains from scratch; later candidates
    # start from the best weights so far (the fixed discriminator matches them completely).
    population, later = history[:2], history[2:]
    assert all(e.metrics["inherited_generator"] == e.metrics["inherited_discriminator"] == 0.0 for e in population)
    assert all(e.metrics["inherited_discriminator"] == 1.0 and e.metrics["inherited_generator"] > 0.0 for e in later)
    # A genotype met again from other starting weights is trained, not served its old FID.
    assert not any(e.cached for e in later if e.key in {p.key for p in population})
    assert run.best_weights.exists() and run.result.best.fitness == max(e.fitness for e in history)
    GanGenotype.parse(run.result.best.code, "generator")
    with ThreadPoolExecutor(1) as executor:
        # the finished state is reused: nothing retrains
        again = search_gan(data, request, SearchRuntime(executor, 1, tmp_path))
    assert [e.code for e in again.result.history] == [e.code for e in history]
    assert [e.metrics["fid"] for e in again.result.history] == [e.metrics["fid"] for e in history]


def test_discriminator_stage_starts_every_candidate_from_the_given_generator_state(tmp_path):
    from bio_assets.core.gan.networks import GanNetworkSpec
    from bio_assets.core.gan.search import build_seeded_gan

    data = tiny_search_data()
    generator_code = "{3, 26-6, []}"
    generator = build_seeded_gan(GanNetworkSpec("generator", generator_code, 16, 32, 2), 7)
    request = GanSearchRequest(
        "discriminator",
        EvolutionParams(population_size=2, cycles=0, sample_size=1, seed=0),
        GanTrainParams(iterations=1, batch_size=4),
        generator_code, FIXED_DISCRIMINATOR, 16, 8, 32, fid_samples=8, max_nodes=3,
    )  # fmt: skip
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    with ThreadPoolExecutor(1) as executor:
        run = search_gan(data, request, SearchRuntime(executor, 1, tmp_path), initial_state=state)
    # The first cycle trains from the given generator (stage 2 of the source), not from scratch.
    assert all(e.metrics["inherited_generator"] == 1.0 for e in run.result.history)
    (saved,) = (tmp_path / "initial").glob("*.safetensors")  # one file, named by its content
    with ThreadPoolExecutor(1) as executor:
        search_gan(data, request, SearchRuntime(executor, 1, tmp_path), initial_state=state)
    assert list((tmp_path / "initial").glob("*.safetensors")) == [saved]
