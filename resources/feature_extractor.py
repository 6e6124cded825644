"""The ``feature_extractor`` resource: serves the trained domain CNNs (BioCNN-1/2) and, when a
local weights file is configured, Inception-v3 pool3 (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import torch
from pydantic import Field

from bio_assets.core.cnn.training import Precision
from bio_assets.core.io.storage import ModelWeights
from bio_assets.core.metrics.extractors import EXTRACTOR_NAMES, FeatureExtractor, domain_extractor, unpack_extractor
from bio_assets.core.metrics.inception import INCEPTION_NAME, inception_extractor


class FeatureExtractorResource(dg.ConfigurableResource):
    """Which features FID and IS use, and where Inception-v3's FID weights are on disk."""

    inception_weights: str = Field(
        default="",
        description=(
            "local file of the FID Inception-v3 weights (torch-fidelity's "
            "weights-inception-2015-12-05-6726825d.pth); empty: Inception metrics are skipped"
        ),
    )

    def inception_status(self) -> str:
        """'available', or why Inception metrics are skipped."""
        if not self.inception_weights:
            return "skipped: no inception_weights file configured (nothing is downloaded)"
        if not Path(self.inception_weights).is_file():
            return f"skipped: inception_weights file {self.inception_weights} does not exist"
        return "available"

    def serve(
        self, name: str, trained: ModelWeights, device: torch.device, precision: Precision = Precision()
    ) -> FeatureExtractor:
        """The named extractor: ``biocnn1``/``biocnn2`` from the ``feature_extractors`` asset, or ``inception_v3``."""
        if name == INCEPTION_NAME:
            status = self.inception_status()
            if status != "available":
                raise ValueError(f"Inception-v3 is not available: {status}")
            return inception_extractor(self.inception_weights, device)
        if name not in EXTRACTOR_NAMES:
            raise ValueError(f"unknown feature extractor {name!r}; choose one of {(*EXTRACTOR_NAMES, INCEPTION_NAME)}")
        model = unpack_extractor(trained.state_dict, trained.spec, name)
        return domain_extractor(name, model, int(trained.spec["extractors"][name]["input_size"]), device, precision)

    def available(self) -> tuple[str, ...]:
        """Every extractor that can be served now, domain CNNs first."""
        return (*EXTRACTOR_NAMES, *((INCEPTION_NAME,) if self.inception_status() == "available" else ()))
