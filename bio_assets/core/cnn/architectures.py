"""Architectures a user can train: the searched network, a genotype pair, a torchvision
model name, or ``package.module:factory`` returning an ``nn.Module`` for K classes."""

from __future__ import annotations

import importlib
from typing import NamedTuple

from torch import nn

from bio_assets.core.cnn.baselines import build_baseline
from bio_assets.core.cnn.networks import NetworkSpec, SearchedNetwork


def architecture_spec(architecture: str, num_classes: int, channels: int, searched: NetworkSpec | None = None) -> dict:
    """A JSON spec that ``build_architecture`` turns back into the module."""
    if architecture == "searched":
        if searched is None:
            raise ValueError("architecture 'searched' needs the searched cell and macro architecture")
        return NetworkSpec(searched.cell, searched.macro, channels, num_classes).to_dict()
    if "/" in architecture and ":" not in architecture:
        cell, macro = architecture.split("/", 1)  # e.g. "3501-110-44-1/5-[1]"
        return NetworkSpec(cell, macro, channels, num_classes).to_dict()
    if ":" in architecture:
        return {"kind": "factory", "path": architecture, "num_classes": num_classes}
    import torchvision  # importing its models costs seconds (torch._dynamo): only where one is built

    if architecture in torchvision.models.list_models(module=torchvision.models):
        return {"kind": "torchvision", "name": architecture, "num_classes": num_classes}
    raise ValueError(
        f"unknown architecture {architecture!r}: use 'searched', 'CELL/MACRO' (e.g. '3501-110-44-1/5-[1]'), "
        "a torchvision classification model name (e.g. 'resnet18') or 'package.module:factory'"
    )


def build_architecture(spec: dict) -> nn.Module:
    """Rebuild a module from its spec, with fresh (untrained) weights; nothing is downloaded."""
    kind = spec.get("kind")
    if kind == "searched_cnn":
        return SearchedNetwork(NetworkSpec.from_dict(spec))
    if kind == "baseline":
        return build_baseline(spec["name"], spec["num_classes"])
    if kind == "torchvision":
        import torchvision

        return torchvision.models.get_model(spec["name"], weights=None, num_classes=spec["num_classes"])
    if kind == "factory":
        module_name, _, attribute = spec["path"].partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot import architecture factory {spec['path']!r}: {err}") from None
        model = factory(spec["num_classes"])
        if not isinstance(model, nn.Module):
            raise ValueError(f"{spec['path']} returned {type(model).__name__}, not an nn.Module")
        return model
    raise ValueError(f"unknown architecture spec kind {kind!r}")


class StoredClassifier(NamedTuple):
    model: nn.Module  # in eval mode
    class_names: tuple[str, ...]
    input_size: int  # the pixels it was trained on: every image is resized to this before it is classified


def stored_classifier(state_dict: dict, spec: dict) -> StoredClassifier:
    """A classifier stored by ``classifier`` / ``extended_classifier``, with the input size it was trained at."""
    if "input_size" not in spec:
        raise ValueError(f"classifier spec has no input_size (stored by an older version?): {sorted(spec)}")
    model, class_names = load_classifier(state_dict, spec)
    return StoredClassifier(model, class_names, int(spec["input_size"]))


def load_classifier(state_dict: dict, spec: dict) -> tuple[nn.Module, tuple[str, ...]]:
    """A trained classifier stored as ``state_dict`` + spec (with ``class_names``), in eval mode."""
    if "class_names" not in spec:
        raise ValueError(f"classifier spec has no class_names: {sorted(spec)}")
    model = build_architecture({k: v for k, v in spec.items() if k not in ("class_names", "input_size")})
    model.load_state_dict(state_dict)
    return model.eval(), tuple(spec["class_names"])
