"""validation_report: windows too short for the energy counter are set apart, not judged."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from validation_report import _external


def test_short_windows_are_counted_but_not_judged() -> None:
    rows = [
        {"window": "measured", "duration_s": 1.68, "diff_pct": 1.79},
        {"window": "baseline", "duration_s": 5.0, "diff_pct": -0.28},
        {"window": "prefill", "duration_s": 0.10, "diff_pct": -58.3},
    ]
    (line, _) = _external("parity", rows)
    assert "2 llem windows" in line
    assert "max |diff| 1.790%" in line and "median 1.790%" in line
    assert "1 shorter than 1 s" in line
    assert "58" not in line


def test_only_short_windows_still_say_so() -> None:
    (line, _) = _external("fast", [{"window": "prefill", "duration_s": 0.2, "diff_pct": 40.0}])
    assert line.startswith("fast: 0 llem windows") and "1 shorter than 1 s" in line


def test_no_windows_no_line() -> None:
    assert _external("vllm", []) == []
