"""The result's window records (issue 17 item 4): each window carries the GPU temperature at
its start and end and the slowdown reasons seen inside it, and a measured or prefill window
in which the GPU throttled adds a warning to the result; the idle baseline does not."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from llem_harness.energy.base import WindowReading
from llem_harness.report.result import _windows
from llem_harness.sampler import PowerSampler
from tests.unit.llem_harness import fake_pynvml


def _reading(t0: float, t1: float) -> WindowReading:
    return WindowReading(joules=100.0, duration_s=t1 - t0, start_monotonic=t0,
                         end_monotonic=t1, start_unix_ns=int(t0 * 1e9),
                         end_unix_ns=int(t1 * 1e9))


def test_throttled_windows_are_recorded_and_warned_about(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # samples at t = 1..6: throttled (power cap) at 2 (baseline), thermal at 5 (measured)
    gpu = {"uuid": "GPU-a", "power_mw": 300_000, "temp_c": [40, 41, 50, 58, 66, 60],
           "reasons": [0, 0x4, 0, 0, 0x40, 0]}
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml.make([gpu]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sampler = PowerSampler([0], 0.1, full_read_s=0)  # every field at every sample
    for t in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        sampler.sample_once(t)
    ctx = SimpleNamespace(sampler=sampler, source=object(), warnings=[], windows=[
        ("baseline", _reading(1.5, 2.5), 0),
        ("measured", _reading(2.5, 5.5), 3),
        ("prefill", _reading(5.5, 6.5), 2),
    ])
    base, measured, prefill = _windows(ctx)
    assert (base.throttled, measured.throttled, prefill.throttled) == (["power_cap"],
                                                                       ["thermal"], [])
    assert (measured.temp_start_c, measured.temp_end_c) == (41.0, 66.0)
    assert (prefill.temp_start_c, prefill.temp_end_c) == (66.0, 60.0)
    assert ctx.warnings == ["GPU throttled inside the measured window (thermal): its speed "
                            "and energy are those of a slowed GPU"]


def test_without_a_power_trace_the_window_has_no_thermal_state() -> None:
    ctx = SimpleNamespace(sampler=None, source=None, warnings=[],
                          windows=[("measured", _reading(0.0, 1.0), 1)])
    (w,) = _windows(ctx)
    assert (w.temp_start_c, w.temp_end_c, w.throttled, w.energy_j) == (None, None, [], None)
    assert ctx.warnings == []
