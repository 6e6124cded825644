"""Search data sent once per search: evaluators for other processes carry a reference (path and
digest), not the images; the reference reads back the same tensors, refuses a file that changed,
and a CNN and a GAN search that ship their data find what the same search in process finds."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
import torch

from bio_assets.core.cnn.candidates import CandidateEvaluator, SearchData
from bio_assets.core.cnn.search import CnnSearchRequest, search_cnn
from bio_assets.core.cnn.training import LabelledImages, TrainParams
from bio_assets.core.gan.genotypes import FIXED_DISCRIMINATOR
from bio_assets.core.gan.search import GanSearchRequest, search_gan
from bio_assets.core.gan.training import GanTrainParams
from bio_assets.core.search.evolution import EvolutionParams
from bio_assets.core.search.runtime import SearchRuntime
from tests.test_gan_search import tiny_search_data


def search_data(count: int = 120, size: int = 32) -> SearchData:
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8))
    labels = torch.arange(count) % 3
    return SearchData(LabelledImages(images, labels), LabelledImages(images[:30], labels[:30]), ("a", "b", "c"), "v1")


def test_a_shipped_evaluator_carries_a_reference_not_the_images(tmp_path):
    data = search_data()
    direct = CandidateEvaluator(data, TrainParams(epochs=1), 8, "cell")
    shipped = replace(direct, data=data.shipped(tmp_path))
    assert len(pickle.dumps(direct)) > 300_000 and len(pickle.dumps(shipped)) < 3_000
    resolved = shipped.data.resolve()
    assert torch.equal(resolved.train.images, data.train.images) and torch.equal(resolved.val.labels, data.val.labels)
    assert len(list(tmp_path.iterdir())) == 1
    assert data.shipped(tmp_path) == shipped.data  # the same data is written once


def test_a_changed_shipped_file_is_refused(tmp_path):
    from bio_assets.core.io.storage import save_weights
    from bio_assets.core.search.shipping import ShippedTensors

    reference = search_data().shipped(tmp_path)
    tampered = {"train_images": torch.zeros(2, 2, 2, 3, dtype=torch.uint8)}
    save_weights(tmp_path / "other.safetensors", tampered, {"digest": reference.tensors.digest})
    with pytest.raises(ValueError, match="does not hold the tensors"):
        ShippedTensors(str(tmp_path / "other.safetensors"), reference.tensors.digest).load()


@pytest.mark.slow(seconds=10)
def test_cnn_and_gan_searches_that_ship_their_data_find_what_they_find_in_process(tmp_path):
    data = search_data(60, 16)
    request = CnnSearchRequest(
        "cell", EvolutionParams(population_size=2, cycles=2, sample_size=1, seed=0), TrainParams(epochs=1), 8,
        max_nodes=3,
    )  # fmt: skip
    gan_data = tiny_search_data()
    gan_request = GanSearchRequest(
        "generator", EvolutionParams(population_size=2, cycles=1, sample_size=1, seed=0),
        GanTrainParams(iterations=2, batch_size=4), "", FIXED_DISCRIMINATOR, 16, 8, 32, fid_samples=8, max_nodes=3,
    )  # fmt: skip
    results = {}
    for ships in (False, True):
        folder = tmp_path / ("shipped" if ships else "direct")
        with ThreadPoolExecutor(1) as executor:
            runtime = SearchRuntime(executor, 1, folder, ships_data=ships)
            cnn = search_cnn(data, request, runtime).result
            gan = search_gan(gan_data, gan_request, runtime).result
        results[ships] = [(e.code, e.fitness) for e in (*cnn.history, *gan.history)]
        assert (folder / "data").exists() == ships
    assert results[True] == results[False]
