"""cpu_steadiness: the busy-loop probe, its summary, and its verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "cpu_steadiness.py"
sys.path.insert(0, str(BENCH.parent))
import cpu_steadiness  # noqa: E402


def test_cpu_lists_parse_like_taskset() -> None:
    assert cpu_steadiness.cpu_set("4-5") == {4, 5}
    assert cpu_steadiness.cpu_set("0,2-3") == {0, 2, 3}
    assert cpu_steadiness.cpu_set(None) is None


def test_a_core_that_halves_its_speed_is_unsteady_and_a_flat_one_is_not() -> None:
    flat = cpu_steadiness.summarise([1000] * 30)
    assert flat["cv_pct"] == 0.0 and flat["slowest_over_fastest"] == 1.0
    assert flat["per_second"] == [1000, 1000, 1000]
    halved = cpu_steadiness.summarise([800] * 10 + [400] * 10 + [800] * 10)
    assert halved["slowest_over_fastest"] == 0.5
    assert cpu_steadiness.steady(flat, 3.0) and not cpu_steadiness.steady(halved, 3.0)
    short = cpu_steadiness.summarise([1000] * 5)  # under two seconds: judges nothing
    assert "cv_pct" not in short and cpu_steadiness.steady(short, 3.0)


def test_the_probe_runs_pinned_and_exits_3_above_its_limit() -> None:
    run = [sys.executable, str(BENCH), "--cpus", "0", "--seconds", "2.2"]
    ok = subprocess.run([*run, "--max-cv", "1000"], capture_output=True, text=True,
                        timeout=60)
    rep = json.loads(ok.stdout)
    assert ok.returncode == 0 and rep["cpus"] == "0" and rep["slices"] >= 20
    assert len(rep["per_second"]) == 2 and rep["cv_pct"] >= 0
    strict = subprocess.run([*run, "--max-cv", "-1"], capture_output=True, text=True,
                            timeout=60)
    assert strict.returncode == cpu_steadiness.UNSTEADY


def test_aligned_slices_end_on_the_shared_monotonic_clock() -> None:
    import time

    start = time.monotonic() + 0.05
    counts = cpu_steadiness.count_slices(0.3, start)
    assert len(counts) == 3 and all(n > 0 for n in counts)
    assert time.monotonic() >= start + 0.3


def test_shared_swings_correlate_and_a_flat_core_says_nothing() -> None:
    assert cpu_steadiness.correlation([1.0, 2.0, 3.0], [2.0, 4.0, 6.1]) > 0.99
    assert cpu_steadiness.correlation([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) < -0.99
    assert cpu_steadiness.correlation([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_cores_mode_probes_each_core_and_correlates_every_two() -> None:
    run = [sys.executable, str(BENCH), "--cores", "0,0", "--seconds", "2.2"]
    ok = subprocess.run([*run, "--max-cv", "1000"], capture_output=True, text=True,
                        timeout=60)
    rep = json.loads(ok.stdout)
    assert ok.returncode == 0 and list(rep["cores"]) == ["0"]
    assert len(rep["cores"]["0"]["per_second"]) == 2 and rep["correlation_of_seconds"] == {}
    two = subprocess.run([sys.executable, str(BENCH), "--cores", "0-1", "--seconds", "2.2",
                          "--max-cv", "-1"], capture_output=True, text=True, timeout=60)
    rep2 = json.loads(two.stdout)
    assert two.returncode == cpu_steadiness.UNSTEADY and set(rep2["cores"]) == {"0", "1"}
    assert set(rep2["correlation_of_seconds"]) == {"0-1"}
