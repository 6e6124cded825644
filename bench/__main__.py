"""``python -m bench [--json FILE] [--only NAME ...] [--device cpu|cuda]``: every benchmark, each
against its reference in the same run; a table on stdout, the same numbers as JSON in FILE."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench import bench_gan, bench_ingest, bench_search, bench_synthesis, bench_training
from bench.results import BenchResult, table, write_json

# Each group yields results whose names are the contract of docs/benchmarks.md.
GROUPS = {
    "ingestion": lambda device: bench_ingest.results(),
    "training": bench_training.results,
    "search": bench_search.results,
    "gan": bench_gan.results,
    "synthesis": lambda device: bench_synthesis.results(),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="write {machine, benchmarks} here")
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS), help="run only these groups")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    found: list[BenchResult] = []
    seconds: dict[str, float] = {}
    print(table([]), flush=True)  # the header
    for name, run in GROUPS.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        for result in run(device):  # a list, or a generator yielding each entry as it is measured
            print(table([result]).splitlines()[1], flush=True)
            found.append(result)
            if args.json:  # after every entry, so an interrupted run keeps what it measured
                write_json(args.json, found, {"device": str(device), "group_seconds": seconds})
        seconds[name] = round(time.perf_counter() - started, 1)
    extra = {"device": str(device), "group_seconds": seconds}
    if device.type == "cpu" and (not args.only or "training" in args.only):
        memory = bench_training.paper_candidate_memory()
        extra["peak_rss_mb"] = {"paper_candidate_training": {"largest_process_mb": round(memory["peak_rss_mb"], 1)}}
        print(f"peak RSS of a paper-settings candidate training: {memory['peak_rss_mb']:.0f} MiB")
    if args.json:
        write_json(args.json, found, extra)
    print("\n" + table(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
