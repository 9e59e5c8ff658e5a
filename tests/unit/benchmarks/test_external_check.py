"""external_check: counter interpolation at window edges and the per-window comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import external_check

from tests.unit.llem_harness import fake_pynvml


def _log(monkeypatch: pytest.MonkeyPatch) -> external_check.CounterLog:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml.make([{"uuid": "GPU-a",
                                                                    "energy_mj": 0,
                                                                    "power_mw": 1}]))
    log = external_check.CounterLog([0])
    # 100 W for 10 s, read every 0.5 s: 50 J per reading
    log.t = [int(1e9 * (100 + 0.5 * k)) for k in range(21)]
    log.mj = [[50_000 * k] for k in range(21)]
    return log


def test_interpolates_between_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _log(monkeypatch)
    assert log.joules_at(int(101.25e9)) == pytest.approx(125.0)
    assert log.joules_at(int(99e9)) is None and log.joules_at(int(111e9)) is None


def test_compares_every_recorded_window(tmp_path: Path, monkeypatch) -> None:
    log = _log(monkeypatch)
    run = tmp_path / "s" / "e" / "cycle-0"
    run.mkdir(parents=True)
    windows = [
        {"name": "measured", "start_unix_ns": int(101e9), "end_unix_ns": int(105e9),
         "duration_s": 4.0, "energy_j": 404.0},
        {"name": "prefill", "start_unix_ns": int(106e9), "end_unix_ns": int(108e9),
         "duration_s": 2.0, "energy_j": None},  # no counter: nothing to compare
        {"name": "baseline", "start_unix_ns": int(50e9), "end_unix_ns": int(60e9),
         "duration_s": 10.0, "energy_j": 1.0},  # before the command started: not ours
    ]
    (run / "result.json").write_text(json.dumps({"windows": windows}))
    rows = external_check.compare(log, tmp_path, since_ns=int(100e9))
    assert len(rows) == 1
    assert rows[0]["external_j"] == pytest.approx(400.0)
    assert rows[0]["diff_pct"] == pytest.approx(1.0)
