"""The user commands of the ``bio-assets`` script: generate images, classify a folder, export
the synthetic dataset. Each reads what the instance at ``$DAGSTER_HOME`` has materialized."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch

from bio_assets.app.stored_models import pick_model
from bio_assets.core.cnn.architectures import stored_classifier
from bio_assets.core.cnn.prediction import predict_folder
from bio_assets.core.io.storage import load_weights
from bio_assets.core.registry import load_registry
from bio_assets.core.synthesis.catalog import dataset_classes
from bio_assets.core.synthesis.export import export_package
from bio_assets.core.synthesis.files import write_images
from bio_assets.core.synthesis.generation import load_trained_generator, synthesize
from resources.catalog import CatalogResource
from resources.paths import registry_path


def _models(asset_names: tuple[str, ...], model_id: str | None, what: str):
    from bio_assets.app.driver import open_instance

    datasets = [e.name for e in load_registry(registry_path())]
    with open_instance() as instance:
        return pick_model(instance, asset_names, datasets, model_id, what)


def generate(
    count: int, class_name: str | None, model_id: str | None, out: Path, seed: int, *, publishable: bool = False
) -> int:
    """``count`` images per class (or of ``class_name``) into ``out/<class>/`` with MD5 files.
    ``publishable``: refuse every class whose quality gates did not pass on this generator's images."""
    if count < 1:
        raise ValueError(f"--count must be >= 1, got {count}")
    model = _models(("trained_gan",), model_id, "trained generator")
    state_dict, spec = load_weights(model.path)
    generator = load_trained_generator(state_dict, spec, torch.device("cpu"))
    classes = [class_name] if class_name is not None else list(generator.class_names)
    for name in classes:
        generator.class_index(name)  # unknown class: a clear error before anything is written
    if publishable:
        refused = _refusals(model, classes)
        if refused:
            listed = "; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in refused.items())
            raise ValueError(f"--publishable: refused, nothing written. {listed}")
    for name in classes:
        target = Path(out) / name
        if target.exists() and any(target.iterdir()):
            raise ValueError(f"{target} already holds files; choose another --out")
    for name in classes:
        files = write_images(
            _fresh(Path(out) / name), name, synthesize(generator, name, count, seed=seed, device=torch.device("cpu"))
        )
        print(f"{len(files)} images of {name} -> {Path(out) / name}")
    print(f"generator: {model.model_id}/{model.asset} (run {model.run_id[:8]}), seed {seed}")
    return 0


def _refusals(model, classes: list[str]) -> dict[str, list[str]]:
    from bio_assets.app.driver import open_instance
    from bio_assets.checks.gates import publishable_refusals

    with open_instance() as instance:
        refused = {name: publishable_refusals(instance, model.model_id, model.run_id, name) for name in classes}
    return {name: reasons for name, reasons in refused.items() if reasons}


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def predict(folder: Path, out: Path, model_id: str | None) -> int:
    """``file_name,predicted_class,probability`` per image of ``folder``; exit 1 when some files could not be read."""
    model = _models(("extended_classifier", "classifier"), model_id, "classifier")
    state_dict, spec = load_weights(model.path)
    if "input_size" not in spec:
        raise ValueError(f"{model.model_id}/{model.asset} was stored without its input size; re-materialize it")
    network, class_names, input_size = stored_classifier(state_dict, spec)
    predictions, failures = predict_folder(network, class_names, input_size, folder, torch.device("cpu"))
    if predictions:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file_name", "predicted_class", "probability"])
            writer.writerows([p.file_name, p.predicted_class, f"{p.probability:.6f}"] for p in predictions)
        print(f"{len(predictions)} predictions by {model.model_id}/{model.asset} (run {model.run_id[:8]}) -> {out}")
    for name, reason in failures:
        print(f"bio-assets: cannot classify {name}: {reason}", file=sys.stderr)
    if not predictions:
        raise ValueError(f"no file in {folder} is a readable image ({len(failures)} tried)")
    return 1 if failures else 0


def export(destination: Path, dataset: str | None) -> int:
    store = CatalogResource().store()
    if dataset is None:
        datasets = [e.name for e in load_registry(registry_path()) if dataset_classes(store.engine, e.name)]
        if len(datasets) != 1:
            raise ValueError(
                f"datasets with synthetic images: {datasets or 'none'}; "
                + ("materialize synthetic_dataset first" if not datasets else "choose one with --dataset")
            )
        dataset = datasets[0]
    summary = export_package(store, dataset, destination)
    print(
        f"exported {summary.num_images} images of {summary.num_classes} classes ({summary.total_bytes / 1e6:.1f} MB) "
        f"with catalog.sql and catalog.csv -> {summary.folder}"
    )
    return 0
