"""Running a fuzz target for a bounded time: atheris (libFuzzer, coverage-guided) when it is
installed, otherwise a seeded random-mutation loop over the same seeds and target.

``python -m tests.fuzz.fuzz_decoder [--seconds N] [--engine atheris|random] [--artifacts DIR]``

A target takes one input (bytes) and raises only on a bug: it catches the errors its code
promises (``ImageRejected``, ``ValueError``) itself. The input that made it raise is written
to ``DIR/crash-<sha1>`` and the run exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

DEFAULT_SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))
Target = Callable[[bytes], None]


def have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def instrumented(active: bool) -> contextlib.AbstractContextManager:
    """Coverage instrumentation (atheris) of the modules imported inside, when ``active`` (the
    target runs as the main module: a test importing the target leaves its modules alone)."""
    if active and have_atheris():
        import atheris

        return atheris.instrument_imports()
    return contextlib.nullcontext()


def mutations(seeds: list[bytes], rng: np.random.Generator) -> Iterator[bytes]:
    """Endless inputs: seeds with bytes flipped, set, inserted, deleted, repeated, truncated or spliced."""
    while True:
        data = bytearray(seeds[int(rng.integers(len(seeds)))])
        for _ in range(int(rng.integers(1, 8))):
            kind = int(rng.integers(7))
            at = int(rng.integers(len(data) + 1))
            if kind == 0 and data:
                data[min(at, len(data) - 1)] ^= 1 << int(rng.integers(8))
            elif kind == 1 and data:
                data[min(at, len(data) - 1)] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(256))]))
            elif kind == 2:
                data[at:at] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
            elif kind == 3:
                del data[at : at + int(rng.integers(1, 32))]
            elif kind == 4:
                data[at:at] = data[at : at + int(rng.integers(1, 64))] * int(rng.integers(1, 4))
            elif kind == 5:
                del data[at:]
            else:
                other = seeds[int(rng.integers(len(seeds)))]
                cut = int(rng.integers(len(other) + 1))
                data[at:] = other[cut:]
        yield bytes(data)


def random_loop(target: Target, seeds: list[bytes], seconds: float, seed: int = 0) -> tuple[int, bytes | None]:
    """(inputs tried, the first input that made ``target`` raise or None); seeds are tried first."""
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + seconds
    tried = 0
    for data in itertools.chain(seeds, mutations(seeds, rng)):
        if tried >= len(seeds) and time.monotonic() >= deadline:
            break
        tried += 1
        try:
            target(data)
        except Exception:  # noqa: BLE001 - any exception escaping the target is the bug being looked for
            traceback.print_exc()
            return tried, data
    return tried, None


def main(name: str, target: Target, seeds: list[bytes]) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m tests.fuzz.{name}")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="how long to fuzz (FUZZ_SECONDS)")
    parser.add_argument("--engine", choices=("atheris", "random"), default="atheris" if have_atheris() else "random")
    parser.add_argument("--artifacts", type=Path, default=Path(".fuzz"), help="where crashing inputs are written")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random engine")
    args = parser.parse_args()
    args.artifacts.mkdir(parents=True, exist_ok=True)
    if args.engine == "random":
        tried, crash = random_loop(target, seeds, args.seconds, args.seed)
        if crash is not None:
            path = args.artifacts / f"crash-{hashlib.sha1(crash).hexdigest()}"
            path.write_bytes(crash)
            print(f"{name}: crash after {tried} inputs, input written to {path}", file=sys.stderr)
            return 1
        print(f"{name}: {tried} inputs in {args.seconds:.0f} s, no crash (random mutation engine)")
        return 0
    import atheris

    with tempfile.TemporaryDirectory(prefix=f"{name}-corpus-") as corpus:
        for index, data in enumerate(seeds):
            Path(corpus, f"seed-{index}").write_bytes(data)
        # libFuzzer: bounded time, 20 s per input at most, crashing inputs into the artifacts folder.
        atheris.Setup(
            [
                sys.argv[0],
                f"-max_total_time={max(1, round(args.seconds))}",
                "-timeout=20",
                "-rss_limit_mb=4096",
                f"-artifact_prefix={args.artifacts}/",
                "-print_final_stats=1",
                corpus,
            ],
            target,
        )
        atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a crash
    return 0
