"""process_spread_cpu: several copies of one loop, each against copy 0, end to end; no
copy is left running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "process_spread_cpu.py"


def _workers_alive() -> list[str]:
    """This test's workers (their arguments), not those of a benchmark run beside it."""
    out = subprocess.run(["pgrep", "-af", f"{BENCH.name} --worker --batch 1 --new-tokens 2"],
                         capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


def test_every_copy_is_compared_with_copy_0_and_none_is_left_running() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--processes", "3", "--rounds", "3", "--cpu", "0",
         "--batch", "1", "--new-tokens", "2"],
        capture_output=True, text=True, timeout=300, check=True)
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    assert [c["process"] for c in rep["copies"]] == [0, 1, 2]
    assert rep["copies"][0]["over_process_0"] == 1.0
    for c in rep["copies"][1:]:
        lo, hi = c["over_process_0_ci95"]
        assert lo <= c["over_process_0"] <= hi
    assert rep["spread_pct"] >= 0 and 0 <= rep["copies_apart_from_0"] <= 2
    assert _workers_alive() == []


def test_llem_copies_pair_with_plain_copies_and_none_is_left_running() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--processes", "1", "--llem-copies", "2", "--rounds",
         "3", "--cpu", "0", "--batch", "1", "--new-tokens", "2", "--llem-side", "window"],
        capture_output=True, text=True, timeout=300, check=True)
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    assert [c["process"] for c in rep["copies"]] == [0]
    assert rep["llem_side"] == "window" and rep["llem_copies"] == 2
    assert len(rep["llem_process_over_plain_by_pair"]) == 2
    lo, hi = rep["llem_process_over_plain_ci95"]
    assert lo <= rep["llem_process_over_plain"] <= hi and lo > 0
    assert _workers_alive() == []
