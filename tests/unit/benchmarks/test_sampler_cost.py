"""sampler_cost: the three sides run end to end with the stand-in NVML, and both samplers
really sample (the process one in its own process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "sampler_cost.py"


def test_sampler_cost_runs_every_side_with_the_stand_in_nvml() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--fake-nvml", "--rounds", "3", "--batch", "1",
         "--new-tokens", "4"], capture_output=True, text=True, timeout=300, check=True)
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(rep["median_call_s"]) == {"none", "thread", "process"}
    for side in ("thread", "process"):
        assert rep[f"{side}_over_none_time"] > 0
        lo, hi = rep[f"{side}_over_none_ci95"]
        assert lo <= rep[f"{side}_over_none_time"] <= hi


def test_a_reader_side_runs_pinned_and_reports_its_call_latencies() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--fake-nvml", "--rounds", "3", "--batch", "1",
         "--new-tokens", "4", "--sides", "process,reader:instant+memory@same"],
        capture_output=True, text=True, timeout=300, check=True)
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(rep["median_call_s"]) == {"none", "process", "reader:instant+memory@same"}
    lat = rep["reader_call_median_us"]["reader:instant+memory@same"]
    assert set(lat) == {"instant", "memory"}
    assert all(us >= 20 for us in lat.values())  # the stand-in sleeps 20 us a call


def test_an_unknown_nvml_call_is_a_one_line_error() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--fake-nvml", "--rounds", "3", "--batch", "1",
         "--new-tokens", "4", "--sides", "reader:bogus@same"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "unknown NVML call" in out.stderr
