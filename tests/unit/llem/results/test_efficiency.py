"""Study efficiency: measured-window seconds over the study's wall time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from llem.results.efficiency import study_efficiency
from llem_schema.result import WindowRecord
from tests.factories import make_result


def _with_windows(cycle: int, measured: float, prefill: float, baseline: float = 0.0):
    r = make_result(cycle=cycle)
    wins = [("measured", measured), ("prefill", prefill)] + ([("baseline", baseline)]
                                                             if baseline else [])
    recs = [WindowRecord(name=n, start_unix_ns=0, end_unix_ns=int(d * 1e9), start_monotonic_s=0,
                         end_monotonic_s=d, duration_s=d) for n, d in wins]
    return r.model_copy(update={"windows": recs,
                                "finished_at": r.started_at + timedelta(seconds=30)})


def test_ratio_counts_measured_and_prefill_windows_over_the_span() -> None:
    a = _with_windows(0, 10.0, 5.0, baseline=10.0)
    b = _with_windows(1, 12.0, 6.0)
    eff = study_efficiency([a, b])
    assert eff is not None
    assert eff.measured_s == pytest.approx(33.0) and eff.baseline_s == pytest.approx(10.0)
    span = (max(a.finished_at, b.finished_at) - min(a.started_at, b.started_at)).total_seconds()
    assert eff.wall_s == pytest.approx(span)
    assert eff.ratio == pytest.approx(33.0 / span)
    assert "time in measured windows: 33.0 s" in eff.line()


def test_results_without_window_list_use_their_metrics() -> None:
    r = make_result()
    assert not r.windows
    eff = study_efficiency([r])
    expect = r.energy.duration_s + (r.prefill.time_s or 0) * r.setup.prefill_passes
    assert eff is not None and eff.measured_s == pytest.approx(expect)
    assert study_efficiency([]) is None
