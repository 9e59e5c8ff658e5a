"""validation_report: windows too short for the energy counter are set apart, not judged;
rounds whose launching threads sat on different cores are told apart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from validation_report import _external, _launch_cores, markdown


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


def _seg(tok_per_s: float, core: int | None) -> dict[str, object]:
    return {"tok_per_s": tok_per_s, "cpu": {"launcher_core": core} if core is not None else None}


def test_rounds_are_split_by_whether_both_launchers_shared_a_core() -> None:
    row = {"batch": 8, "setting": "default", "segments": {
        "llem": [_seg(90, 4), _seg(80, 5), _seg(100, 4), _seg(70, 5), _seg(50, None)],
        "bare": [_seg(100, 4), _seg(100, 4), _seg(100, 4), _seg(100, 4), _seg(100, 4)]}}
    (line, blank) = _launch_cores([row])
    assert blank == ""
    assert "b8 default of 4 rounds" in line  # the round without a core is left out
    assert "same core in 2 (llem/bare 0.950)" in line
    assert "different cores in 2 (llem/bare 0.750)" in line


def test_pinned_rounds_have_only_the_same_core_and_no_cores_no_line() -> None:
    row = {"batch": 1, "segments": {"llem": [_seg(10, 4)] * 3, "bare": [_seg(10, 4)] * 3}}
    (line, _) = _launch_cores([row])
    assert "same core in 3 (llem/bare 1.000)" in line and "different" not in line
    assert _launch_cores([{"batch": 1, "segments": {"llem": [_seg(1, None)],
                                                    "bare": [_seg(1, None)]}}]) == []


def test_a_call_of_only_the_inproc_own_diagnostic_renders() -> None:
    """``--llem-settings inproc-own`` alone (llem's worker imports llem's harness and runs
    only the bare loop: no llem run, so no "default" rows) still makes a whole report; the
    rows are session 19's call 3 without its default setting."""
    res = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "h100-session19"
    rep = json.loads((res / "3-diag-8-k2" / "gpu_validation.json").read_text())
    rep["parity"] = [r for r in rep["parity"] if r["setting"] == "inproc-own"]
    md = markdown(rep)
    assert "| 8 | inproc-own | 606.6 | 585.5 | 0.965 | 0.960 [0.945, 1.079]" in md
    assert "CANNOT judge" in md  # that call's machine slowed mid-run
    assert "b8 inproc-own of 8 rounds: same core in 8" in md
