"""The feature_extractor resource: trained BioCNNs round-trip through the asset value, Inception
is served from a local file only (tested with weights this test makes), and is skipped otherwise."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from bio_assets.core.cnn.training import LabelledImages, TrainParams
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.extractors import pack_extractors, train_extractor
from resources.feature_extractor import FeatureExtractorResource

CPU = torch.device("cpu")


def test_trained_extractors_are_served_with_the_same_features():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (12, 32, 32, 3), dtype=torch.uint8)
    data = LabelledImages(images, torch.arange(12) % 3)
    trained = {
        name: train_extractor(
            name, data, data, num_classes=3, width=8, params=TrainParams(epochs=1, batch_size=6), device=CPU
        )
        for name in ("biocnn1", "biocnn2")
    }
    tensors, spec = pack_extractors(trained)
    resource = FeatureExtractorResource()
    for name, t in trained.items():
        served = resource.serve(name, ModelWeights(tensors, spec), CPU)
        with torch.no_grad():
            expected = t.model.eval().features(images.permute(0, 3, 1, 2).float() / 127.5 - 1).double().numpy()
        assert served.features(images).shape == (12, 64)
        assert torch.allclose(torch.from_numpy(served.features(images)), torch.from_numpy(expected), atol=1e-5)
        assert served.resize_mode(32) == "none" and served.resize_mode(16) == "bilinear 16->32"
    assert resource.available() == ("biocnn1", "biocnn2")
    with pytest.raises(ValueError, match="unknown feature extractor"):
        resource.serve("vgg_face", ModelWeights(tensors, spec), CPU)


def test_inception_is_skipped_without_a_local_file(tmp_path):
    assert FeatureExtractorResource().inception_status().startswith("skipped: no inception_weights")
    missing = FeatureExtractorResource(inception_weights=str(tmp_path / "nope.pth"))
    assert "does not exist" in missing.inception_status()
    with pytest.raises(ValueError, match="Inception-v3 is not available"):
        missing.serve("inception_v3", ModelWeights({}, {}), CPU)


def test_inception_loads_a_local_state_dict_and_gives_pool3_features(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    # Build the network once with its own random init (no download) to make a weights file.
    with monkeypatch.context() as patch:
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / "inception.pth"
    torch.save(network.state_dict(), weights)
    resource = FeatureExtractorResource(inception_weights=str(weights))
    assert resource.inception_status() == "available" and resource.available()[-1] == "inception_v3"
    extractor = resource.serve("inception_v3", ModelWeights({}, {}), CPU)
    features = extractor.features(torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8))
    assert features.shape == (2, 2048) and torch.isfinite(torch.from_numpy(features)).all()
    assert extractor.resize_mode(32) == "torch-fidelity bilinear ->299 from 32"
    probabilities = extractor.probabilities(
        torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    )  # for Inception Score
    assert probabilities.shape == (2, 1008) and np.allclose(probabilities.sum(axis=1), 1.0)


def test_a_pickled_object_instead_of_weights_is_refused(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"not": object()}, bad)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        FeatureExtractorResource(inception_weights=str(bad)).serve("inception_v3", ModelWeights({}, {}), CPU)


def test_inception_file_is_read_once_and_torch_fidelity_gets_the_verified_tensors(tmp_path, monkeypatch):
    """No second, unchecked load of the path: replacing the file after the check changes nothing."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    import bio_assets.core.metrics.inception as inception

    with monkeypatch.context() as patch:
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / "inception.pth"
    torch.save(network.state_dict(), weights)
    checked = inception.load_weights_file

    def check_then_swap(path):
        state = checked(path)
        torch.save({"not": object()}, weights)  # the file turns hostile right after its check
        return state

    loads = []
    real_load = torch.load
    monkeypatch.setattr(inception, "load_weights_file", check_then_swap)
    monkeypatch.setattr(fidelity.torch, "load", lambda f, **kw: loads.append((f, kw)) or real_load(f, **kw))
    extractor = FeatureExtractorResource(inception_weights=str(weights)).serve(
        "inception_v3", ModelWeights({}, {}), CPU
    )
    from_path = [(f, kw["weights_only"]) for f, kw in loads if isinstance(f, (str, Path))]
    unchecked = [f for f, kw in loads if not kw["weights_only"]]
    assert from_path == [(weights, True)]  # the one read of the file, checked
    assert len(unchecked) == 1 and not isinstance(unchecked[0], (str, Path))  # torch-fidelity's, from memory
    assert extractor.features(torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)).shape == (1, 2048)
