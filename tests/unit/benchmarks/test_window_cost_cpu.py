"""window_cost_cpu: llem's generate and measured window against a bare generate on one
launch-bound CPU model, end to end (a real llem run first, then paired rounds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "window_cost_cpu.py"


def test_every_side_runs_and_each_ratio_lies_in_its_interval() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "3", "--batch", "2", "--new-tokens", "4"],
        capture_output=True, text=True, timeout=300, check=True)
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(rep["median_s"]) == {"bare", "llem-generate", "llem-window"}
    assert all(s > 0 for s in rep["median_s"].values())
    for side in ("llem-generate", "llem-window"):
        lo, hi = rep[f"{side}_over_bare_ci95"]
        assert lo <= rep[f"{side}_over_bare"] <= hi
        # throughput over bare's is the time ratio turned round, pair by pair
        speed = rep[f"{side}_tok_per_s_over_bare"]
        slo, shi = rep[f"{side}_tok_per_s_over_bare_ci95"]
        assert slo <= speed <= shi
        assert abs(speed * rep[f"{side}_over_bare"] - 1) < 1e-9
        assert rep["tok_per_s"][side] == 2 * 4 / rep["median_s"][side]


def test_llem_generate_adds_at_most_a_few_ops_per_decode_step() -> None:
    """Op counts do not depend on the core's speed: llem's generate (step clock, its
    generate arguments) may add a handful of aten ops per step to the bare call's ~4,500 on
    this shape, not a per-layer cost; a hook, streamer or logits processor would add
    hundreds."""
    out = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "1", "--batch", "2", "--new-tokens", "8",
         "--count-ops", "--own-model"], capture_output=True, text=True, timeout=300, check=True)
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    ops = rep["ops_per_step"]
    assert set(ops) == {"bare", "llem-generate", "bare-own-model"}
    assert rep["bare-own-model_over_bare"] > 0
    bare = ops["bare"]["aten_ops"]
    # the reference's own model of the same shape runs the very same ops
    assert ops["bare-own-model"] == ops["bare"]
    assert bare > 1000  # 22 layers of real ops were counted
    extra = ops["llem-generate"]["aten_ops"] - bare
    assert 0 <= extra <= 8, extra
    assert ops["llem-generate"]["launches"] == ops["bare"]["launches"] == 0  # no CUDA here
