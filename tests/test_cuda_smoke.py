"""The CUDA paths (fp16-AMP training, GAN steps with scalers, generation, GPU pinning) on a real GPU.

Skipped where CUDA is absent (CI); ``make gpu-smoke`` runs the same checks plus the CUDA bench."""

from __future__ import annotations

import pytest
import torch

from bench import gpu_smoke

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make gpu-smoke)")
CUDA = torch.device("cuda")


def test_fp16_amp_candidate_training_learns():
    assert "val accuracy" in gpu_smoke.amp_candidate_training(CUDA)


def test_gan_steps_with_amp_then_generation_on_the_gpu():
    _, sampler = gpu_smoke.amp_gan_training(CUDA)
    assert next(sampler.parameters()).device.type == "cuda"
    assert "same seed same images" in gpu_smoke.generation(sampler, CUDA)


def test_pool_workers_are_pinned_to_one_visible_gpu_each():
    assert "pool workers saw" in gpu_smoke.device_pinning()
