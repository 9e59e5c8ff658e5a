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
    s = PowerSampler([0], 0.1, full_read_s=0)  # every field at every sample
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


def test_throttling_between_full_reads_is_still_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = {"uuid": "GPU-a", "power_mw": 300_000, "temp_c": [50, 60],
           "reasons": [0, 0, 0x40, 0]}
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml.make([gpu]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    s = PowerSampler([0], 0.5, full_read_s=1.0)  # temperature every 2nd sample
    s.set_phase("decode")
    for t in (1.0, 1.5, 2.0, 2.5):
        s.sample_once(t)
    assert [x.temp_c for x in s.samples] == [50.0, None, 60.0, None]
    start, end, reasons = s.window_state(1.2, 2.7)
    assert (start, end, reasons) == (50.0, 60.0, ["thermal"])


def test_window_edges_and_throttling(sampler: PowerSampler) -> None:
    start, end, reasons = sampler.window_state(1.5, 3.5)
    assert (start, end) == (50.0, 61.0)  # the last sample before the start, the last inside
    assert reasons == ["power_cap", "thermal"]
    assert sampler.window_state(3.5, 4.5)[2] == []
