"""How much of a study's wall time its energy windows cover (issue 12: study efficiency).

A study that spends most of its time loading, warming up and idling between runs costs GPU
hours without adding measurements. ``measured`` counts the windows whose numbers are
reported (the measured window and the prefill window; ``baseline`` is counted apart), over
the span from the first run's start to the last run's end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llem_schema.result import ExperimentResult


@dataclass(frozen=True)
class Efficiency:
    measured_s: float
    baseline_s: float
    wall_s: float

    @property
    def ratio(self) -> float | None:
        return self.measured_s / self.wall_s if self.wall_s > 0 else None

    def line(self) -> str:
        pct = f"{100 * self.ratio:.0f}%" if self.ratio is not None else "—"
        return (f"time in measured windows: {self.measured_s:.1f} s of {self.wall_s:.1f} s "
                f"({pct}; baseline windows {self.baseline_s:.1f} s)")


def _window_seconds(r: ExperimentResult) -> tuple[float, float]:
    if r.windows:
        measured = sum(w.duration_s for w in r.windows if w.name != "baseline")
        return measured, sum(w.duration_s for w in r.windows if w.name == "baseline")
    # results written before schema 1.1 carry no window list: rebuild it from the metrics
    measured = r.energy.duration_s or r.throughput.wall_time_s or 0.0
    if r.prefill.time_s and r.setup.prefill_passes:
        measured += r.prefill.time_s * r.setup.prefill_passes
    return measured, 0.0


def study_efficiency(results: Iterable[ExperimentResult]) -> Efficiency | None:
    done = [r for r in results if r.status == "ok"]
    if not done:
        return None
    measured = baseline = 0.0
    for r in done:
        m, b = _window_seconds(r)
        measured, baseline = measured + m, baseline + b
    wall = (max(r.finished_at for r in done) - min(r.started_at for r in done)).total_seconds()
    return Efficiency(measured, baseline, wall)
