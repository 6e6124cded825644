"""``python -m bench.data_efficiency --draw 3 --sizes 10 20 50 0``: the data-efficiency study
(``core.studies.data_efficiency``) on a labelled set this script makes, not the demo's draw.

Each set is the demo generator at another seed, ``--images`` per class, split
``--fractions`` (train, validation, test) so that the test split is large enough to tell models
apart; the study then takes the first N training images per class. Levers can be switched so that
their effect is read on validation (``--fitness-repeats``, ``--epochs``, ``--no-selection``,
``--min-confidence``). Prints one JSON row per size and writes them with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import torch

from bio_assets.core.data.demo_data import generate_demo_dataset
from bio_assets.core.data.ingest import DatasetLayout, ingest_class
from bio_assets.core.data.splits import SplitParams, split_images
from bio_assets.core.hardware import gan_precision_for, precision_for
from bio_assets.core.profiles import profile_setting
from bio_assets.core.search.runtime import SearchRuntime
from bio_assets.core.studies.data_efficiency import StudyRuntime, study_size
from bio_assets.core.studies.settings import study_settings

CPU = torch.device("cpu")
ARMS = ("searched", "extended", "control", "gain", "baseline")


def labelled_set(draw: int, images: int, fractions: tuple[float, float, float]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        root = generate_demo_dataset(Path(folder) / "set", images_per_class=images, seed=draw)
        layout = DatasetLayout(root)
        params = SplitParams(*fractions)
        return {
            name: split_images(ingest_class(path, name, 64, root).images, params)
            for name, path in layout.class_folders().items()
        }


def interval_row(interval) -> list[float] | None:
    return None if interval is None else [round(interval.value, 4), round(interval.low, 4), round(interval.high, 4)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draw", type=int, default=3, help="demo-generator seed (0 is make demo's)")
    parser.add_argument("--images", type=int, default=240, help="images per class before splitting")
    parser.add_argument("--fractions", type=float, nargs=3, default=[0.5, 0.1, 0.4])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20])
    parser.add_argument("--generator", default="{5, 2551-364-15-5, [1]}", help="make demo's searched generator")
    parser.add_argument("--discriminator", default="{3, 31-5, [1, 3]}", help="make demo's searched discriminator")
    parser.add_argument("--fitness-repeats", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="classifier epochs (the most, with selection)")
    parser.add_argument("--no-selection", action="store_true", help="keep the last pass, not validation's choice")
    parser.add_argument("--min-confidence", type=float, default=None)
    parser.add_argument("--baselines", nargs="+", default=None, help="classic CNNs beside the searched one")
    parser.add_argument("--json", default="")
    parser.add_argument(
        "--state", default="", help="search state and cache folder to keep: a rerun with other levers reuses the search"
    )
    args = parser.parse_args(argv)
    if args.draw == 0:
        raise SystemExit("draw 0 is make demo's dataset: the study is measured on other sets")
    splits = labelled_set(args.draw, args.images, tuple(args.fractions))
    overrides = {
        k: v
        for k, v in {
            "fitness_repeats": args.fitness_repeats,
            "epochs": args.epochs,
            "min_synthetic_confidence": args.min_confidence,
            "select_on_validation": False if args.no_selection else None,
            "baselines": tuple(args.baselines) if args.baselines else None,
        }.items()
        if v is not None
    }
    settings = study_settings(
        lambda asset, field: profile_setting("demo", asset, field), args.sizes, generator=args.generator,
        discriminator=args.discriminator, profile="demo", **overrides,
    )  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as temporary, ThreadPoolExecutor(1) as executor:
        state = Path(args.state or temporary)
        state.mkdir(parents=True, exist_ok=True)
        search = SearchRuntime(executor, 1, state, precision=precision_for(CPU, amp=True))
        runtime = StudyRuntime(
            search, CPU, precision_for(CPU, amp=True), gan_precision_for(CPU, amp=True),
            log=lambda message: print(message, flush=True),
        )  # fmt: skip
        for size in args.sizes:
            started = time.perf_counter()
            result = study_size(splits, size, settings, runtime)
            row = {
                "draw": args.draw, "size": size, "levers": overrides, "cell": result.cell, "macro": result.macro,
                **{k: interval_row(getattr(result, k)) for k in ARMS},
                "best_baseline": result.best_baseline,
                "baselines": {k: interval_row(v) for k, v in result.baselines.items()},
                "baseline_val_accuracy": result.baseline_val_accuracy, "val_accuracy": result.val_accuracy,
                "synthetic": [result.synthetic_generated, result.synthetic_kept, result.synthetic_added],
                "seconds": result.seconds, "total_seconds": round(time.perf_counter() - started, 1),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "settings": str(asdict(settings))}, indent=1))


if __name__ == "__main__":
    main()
