"""The report's comparisons with the source: the searched GAN's FID against the source's 3.39."""

from __future__ import annotations

import dataclasses

from bench.bench_synthesis import report_inputs
from bio_assets.core.reporting import source
from bio_assets.core.reporting.report import build_report


def fid_shortfalls(searched_fid: float) -> list[str]:
    small = report_inputs(real_images=8, fake_images=8, size=16)
    inputs = dataclasses.replace(small, gan_rows=[{"model": "searched GAN", "fid": searched_fid}])
    build_report(inputs)
    return [s for s in inputs.shortfalls if s.startswith("The searched GAN's FID")]


def test_the_searched_gan_is_compared_with_the_sources_own_fid():
    assert source.SEARCHED_GAN_FID == 3.39
    (shortfall,) = fid_shortfalls(5.0)  # above 3.39, below BGAN's 10.03: a shortfall
    assert "5.00" in shortfall and "3.39" in shortfall
    assert fid_shortfalls(3.0) == []
