"""A short run of each fuzz target (``make fuzz`` runs them longer), the fallback engine, and
the inputs fuzzing once found, kept as regressions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import fuzz_decoder, fuzz_genotypes
from tests.fuzz.harness import have_atheris, random_loop

# Pillow warns about each corrupt header the mutated seeds hold: noise here, not a finding.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")
REPO = Path(__file__).resolve().parents[1]
SHORT_S = 3
TARGETS = ("fuzz_decoder", "fuzz_genotypes")
# Inputs that once made a target raise: the parser or decoder was fixed, they must stay handled.
REGRESSIONS = {
    # A NAS-Bench-201 string naming one source twice for a node: KeyError instead of ValueError.
    "fuzz_genotypes": [b"\x01|conv_3x3~0|+|skip_connect~1|none~1|"],
}


@pytest.mark.parametrize("target", TARGETS)
def test_short_fuzz_run_finds_no_crash(target, tmp_path):
    engine = "atheris" if have_atheris() else "random"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            f"tests.fuzz.{target}",
            f"--seconds={SHORT_S}",
            f"--engine={engine}",
            f"--artifacts={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert not list(tmp_path.glob("crash-*"))


@pytest.mark.parametrize("module", [fuzz_decoder, fuzz_genotypes], ids=TARGETS)
def test_seeds_and_regressions_pass_through_the_target(module):
    for data in [*module.seeds(), *REGRESSIONS.get(module.__name__.rpartition(".")[2], [])]:
        module.one_input(data)


def test_random_engine_finds_a_planted_bug():
    def target(data: bytes) -> None:
        if b"\xff\xff" in data:
            raise IndexError("planted")

    tried, crash = random_loop(target, [b"\x00" * 8], seconds=10, seed=1)
    assert crash is not None and b"\xff\xff" in crash and tried > 1


def test_random_engine_runs_the_real_targets_without_crash():
    for module in (fuzz_decoder, fuzz_genotypes):
        tried, crash = random_loop(module.one_input, module.seeds(), seconds=1, seed=0)
        assert crash is None and tried > len(module.seeds())
