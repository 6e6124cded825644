"""Synthetic images and the report: images generated and published per second (ours: PNG +
MD5 files, staged, catalog commit, promotion) against generating and saving plain PNGs with
Pillow; KID against torchmetrics' KernelInceptionDistance on the same features; and the time
to build the report against rendering its figures alone."""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from bench.results import BenchResult
from bio_assets.core.gan.networks import GanNetworkSpec
from bio_assets.core.gan.search import build_seeded_gan
from bio_assets.core.metrics.classification import roc_report
from bio_assets.core.metrics.distribution import kernel_inception_distance
from bio_assets.core.reporting.grids import image_grid_png
from bio_assets.core.reporting.plots import histogram_plot, roc_plot
from bio_assets.core.reporting.report import AccuracyRow, ReportInputs, build_report
from bio_assets.core.reporting.statistics import compare_class
from bio_assets.core.synthesis.catalog import GanRecord, make_engine
from bio_assets.core.synthesis.generation import TrainedGenerator, state_sha256, synthesize
from bio_assets.core.synthesis.publish import SyntheticStore

CLASSES, PER_CLASS = ("a", "b", "c", "d"), 250
CPU = torch.device("cpu")
TRAINING = {
    "g_optimizer": "adam",
    "d_optimizer": "adam",
    "loss": "hinge",
    "batch_size": 16,
    "epochs": 1.0,
    "iterations": 1,
    "g_lr": 1e-4,
    "d_lr": 4e-4,
}


def generator() -> TrainedGenerator:
    spec = GanNetworkSpec("generator", "{3, 42-1, [3]}", 32, 32, len(CLASSES))
    model = build_seeded_gan(spec, 0).eval()
    return TrainedGenerator(model, spec, CLASSES, state_sha256(model.state_dict()))


def ours(root: Path, trained: TrainedGenerator) -> float:
    store = SyntheticStore(make_engine(f"sqlite:///{root / 'catalog.sqlite'}"), root / "synthetic")
    record = GanRecord(
        "bench",
        {"genotype": trained.spec.genotype},
        {"genotype": "-"},
        "-",
        trained.checkpoint_sha256,
        "bench",
        TRAINING,
    )
    started = time.perf_counter()
    for name in CLASSES:
        store.publish(record, name, synthesize(trained, name, PER_CLASS, seed=0, device=CPU), seed=0)
    return len(CLASSES) * PER_CLASS / (time.perf_counter() - started)


def plain(root: Path, trained: TrainedGenerator) -> float:
    """Generate, upsample and ``Image.save`` each PNG; no MD5, no fsync, no catalog."""
    started = time.perf_counter()
    for name in CLASSES:
        images = synthesize(trained, name, PER_CLASS, seed=0, device=CPU)
        (root / name).mkdir(parents=True)
        for index, image in enumerate(images):
            Image.fromarray(image).save(root / name / f"{index:05d}.png")
    return len(CLASSES) * PER_CLASS / (time.perf_counter() - started)


def bench_publication() -> BenchResult:
    trained = generator()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        synthesize(trained, "a", 16, seed=0, device=CPU)  # warm-up
        reference = plain(Path(b), trained)
        measured = ours(Path(a), trained)
    return BenchResult.rate(
        "synthetic_publication", measured, reference, "images/s",
        f"{len(CLASSES)} classes x {PER_CLASS}, generator at 32px upsampled to 64px PNG, fp32 CPU; ours writes PNG "
        "+ MD5 files, fsyncs, stages, commits the catalog and promotes; reference generate + Image.save",
    )  # fmt: skip


def bench_kid() -> BenchResult:
    from torchmetrics.image.kid import KernelInceptionDistance

    warnings.filterwarnings("ignore", category=UserWarning, module="torchmetrics")
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(1000, 256)), rng.normal(size=(1000, 256)) + 0.1
    started = time.perf_counter()
    value, _, _ = kernel_inception_distance(real, fake, np.random.default_rng(0), subsets=100, subset_size=500)
    ours_seconds = time.perf_counter() - started
    metric = KernelInceptionDistance(feature=nn.Identity(), subsets=100, subset_size=500)
    torch.manual_seed(0)
    started = time.perf_counter()
    metric.real_features.append(torch.from_numpy(real))  # the features, as its feature network would give them
    metric.fake_features.append(torch.from_numpy(fake))
    reference = float(metric.compute()[0])
    reference_seconds = time.perf_counter() - started
    return BenchResult.duration(
        "kid", ours_seconds, reference_seconds, "s",
        f"1000 + 1000 precomputed 256-d features, 100 subsets of 500; values ours {value:.6f}, torchmetrics "
        f"{reference:.6f} (different random subsets, so they differ by sampling)",
    )  # fmt: skip


def report_inputs(*, real_images: int = 60, fake_images: int = 100, size: int = 64) -> ReportInputs:
    """Report inputs of random images: ``real_images`` and ``fake_images`` per class at ``size`` px."""
    rng = np.random.default_rng(0)
    real = {n: rng.integers(0, 256, (real_images, size, size, 3), dtype=np.uint8) for n in CLASSES}
    fake = {n: rng.integers(0, 256, (fake_images, size, size, 3), dtype=np.uint8) for n in CLASSES}
    labels = np.arange(80) % len(CLASSES)
    probabilities = rng.dirichlet(np.ones(len(CLASSES)), size=80)
    roc = {name: roc_report(labels, probabilities) for name in ("real only", "real + synthetic")}
    return ReportInputs(
        dataset="bench",
        class_names=CLASSES,
        counts={n: {"raw": 100} for n in CLASSES},
        cnn_rows=[{"model": "searched CNN (real)", "test_accuracy": 0.9}],
        gan_rows=[{"model": "searched GAN", "fid": 10.0}],
        gan_extractor="biocnn1",
        extractor_scores=[],
        inception_status="skipped",
        comparisons=[compare_class(n, real[n], fake[n], np.random.default_rng(1)) for n in CLASSES],
        roc=roc,
        samples={n: (real[n][:8], fake[n][:8]) for n in CLASSES},
        accuracy_rows=[AccuracyRow("real only", 0.9, 0.8, 0.95, "")],
        extension=None,
        gates={n: (True, []) for n in CLASSES},
        settings=[("x", {"seed": 0})],
    )


def bench_report() -> BenchResult:
    inputs = report_inputs()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        build_report(inputs).write(Path(folder))
        ours_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for c in inputs.comparisons:
        histogram_plot(c.real_histogram, c.synthetic_histogram, c.class_name)
    for r in inputs.roc.values():
        roc_plot(r["curves"], r["auc"], r["micro_curve"], r["micro_auc"], class_names=CLASSES, title="roc")
    for real, fake in inputs.samples.values():
        image_grid_png(np.concatenate([real, fake]))
    figures_seconds = time.perf_counter() - started
    return BenchResult.duration(
        "report", ours_seconds, figures_seconds, "s",
        f"report with {len(CLASSES)} classes (tables, histograms, 2 ROC plots, sample grids) built and written, "
        "against rendering its figures alone",
    )  # fmt: skip


def results() -> list[BenchResult]:
    torch.manual_seed(0)
    return [bench_kid(), bench_publication(), bench_report()]


def main() -> None:
    from bench.results import table

    print(table(results()))


if __name__ == "__main__":
    main()
