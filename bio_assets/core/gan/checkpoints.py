"""GAN training checkpoints: both networks, the EMA generator, both optimizers, loss state
and every RNG state in one safetensors file with a JSON header, written atomically, so a
killed training resumes exactly where its last checkpoint left it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bio_assets.core.io.storage import load_weights, save_weights

MODULE_PREFIXES = ("generator", "discriminator", "ema")


@dataclass
class CheckpointState:
    step: int  # generator steps completed
    modules: dict[str, dict[str, torch.Tensor]]  # prefix -> state_dict
    optimizers: dict[str, dict]  # "generator"/"discriminator" -> optimizer.state_dict()
    rng: dict[str, torch.Tensor]  # name -> generator state (uint8)
    header: dict  # JSON: settings, specs, loss state, FID curve


def _flatten_optimizer(name: str, state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt_{name}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], layout: dict) -> dict:
    state: dict[int, dict] = {}
    prefix = f"opt_{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix) :].split(".", 1)
            state.setdefault(int(index), {})[field] = value
    for index, values in layout["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": layout["param_groups"]}


def save_checkpoint(path: Path, checkpoint: CheckpointState) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, state_dict in checkpoint.modules.items():
        tensors.update({f"{prefix}.{k}": v for k, v in state_dict.items()})
    layouts = {}
    for name, state in checkpoint.optimizers.items():
        flat, layouts[name] = _flatten_optimizer(name, state)
        tensors.update(flat)
    tensors.update({f"rng.{k}": v for k, v in checkpoint.rng.items()})
    save_weights(path, tensors, {**checkpoint.header, "step": checkpoint.step, "optimizer_layouts": layouts})


def load_checkpoint(path: Path) -> CheckpointState:
    tensors, header = load_weights(path)
    if "optimizer_layouts" not in header or "step" not in header:
        raise ValueError(f"{path} is not a GAN training checkpoint (no step or optimizer layout in its header)")
    modules = {
        prefix: {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        for prefix in MODULE_PREFIXES
    }
    optimizers = {
        name: _unflatten_optimizer(name, tensors, layout) for name, layout in header.pop("optimizer_layouts").items()
    }
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return CheckpointState(int(header.pop("step")), {k: v for k, v in modules.items() if v}, optimizers, rng, header)
