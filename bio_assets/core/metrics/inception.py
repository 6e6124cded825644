"""Inception-v3 pool3 features with the FID-standard weights (the TensorFlow 2015-12-05 graph
ported by torch-fidelity, the weights torchmetrics uses), from a local file only."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from bio_assets.core.io.storage import load_weights_file
from bio_assets.core.metrics.extractors import FeatureExtractor

INCEPTION_NAME = "inception_v3"
INCEPTION_FEATURES = "2048"  # pool3
INCEPTION_LOGITS = "logits_unbiased"  # the 1008-way head Inception Score uses


def inception_extractor(weights_path: str | Path, device: torch.device) -> FeatureExtractor:
    """The extractor, or ``ValueError`` naming the file when it is missing or unsafe.

    The file is read once, with ``weights_only=True`` (or as safetensors): a file that is not a
    plain state_dict never gets further. torch-fidelity, which unpickles whatever it is given
    without that guard, receives those verified tensors from memory, never the path, so the
    file changing after the check cannot matter.
    """
    state_dict = load_weights_file(weights_path)  # raises on a missing file or pickled objects
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ValueError("Inception-v3 features need torch-fidelity (pip install torch-fidelity)") from err
    verified = io.BytesIO()
    torch.save(state_dict, verified)  # plain tensors we hold, serialized by us
    verified.seek(0)
    network = (
        FeatureExtractorInceptionV3(
            INCEPTION_NAME, [INCEPTION_FEATURES, INCEPTION_LOGITS], feature_extractor_weights_path=verified
        )
        .to(device)
        .eval()
    )

    def outputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # torch-fidelity takes uint8 (B, 3, H, W) and resizes to 299 itself.
        return network(((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))

    return FeatureExtractor(
        INCEPTION_NAME,
        299,
        lambda x: outputs(x)[0],
        device,
        classify=lambda x: outputs(x)[1],
        resizes_itself="torch-fidelity bilinear ->299",
    )
