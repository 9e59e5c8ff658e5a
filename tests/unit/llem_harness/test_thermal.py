"""Thermal and clock state in the power trace and in each window (issue 17): temperature and
clocks per sample, throttle reasons decoded, temperatures at the window's edges, a warning
when the GPU throttled inside a measured window."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llem_harness.sampler import PowerSampler, throttle_reasons
from tests.unit.llem_harness import fake_pynvml


@pytest.fixture
def sampler(monkeypatch: pytest.MonkeyPatch) -> PowerSampler:
    gpu = {"uuid": "GPU-a", "power_mw": 300_000, "temp_c": [50, 55, 61, 66],
           "reasons": [0, 0x4, 0x20, 0]}
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml.make([gpu]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    s = PowerSampler([0], 0.1)
    assert s.active
    for t, phase in ((1.0, "warmup"), (2.0, "decode"), (3.0, "decode"), (4.0, "idle")):
        s.set_phase(phase)
        s.sample_once(t)
    return s


def test_reasons_are_decoded() -> None:
    assert throttle_reasons(0) == [] and throttle_reasons(None) == []
    assert throttle_reasons(0x4 | 0x40) == ["power_cap", "thermal"]
    assert throttle_reasons(0x80) == ["hw_slowdown"]


def test_samples_carry_temperature_clocks_and_reasons(sampler: PowerSampler,
                                                      tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    sampler.write_parquet(tmp_path / "ts.parquet", 0.0)
    t = pq.read_table(tmp_path / "ts.parquet").to_pydict()
    assert t["temp_c"] == [50.0, 55.0, 61.0, 66.0]
    assert set(t["sm_clock_mhz"]) == {1980} and set(t["mem_clock_mhz"]) == {2619}
    assert t["throttle_power_cap"] == [False, True, False, False]
    assert t["throttle_thermal"] == [False, False, True, False]


def test_window_edges_and_throttling(sampler: PowerSampler) -> None:
    start, end, reasons = sampler.window_state(1.5, 3.5)
    assert (start, end) == (50.0, 61.0)  # the last sample before the start, the last inside
    assert reasons == ["power_cap", "thermal"]
    assert sampler.window_state(3.5, 4.5)[2] == []
