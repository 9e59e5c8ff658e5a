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
