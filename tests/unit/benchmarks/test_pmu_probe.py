"""pmu_probe: a count that grows with the work, or the reason there is none."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import pmu_probe


def test_each_event_counts_more_work_as_more_or_names_the_errno() -> None:
    small, large = pmu_probe.probe(10_000), pmu_probe.probe(1_000_000)
    assert set(small) == {"paranoid", "cycles", "instructions"}
    for event in pmu_probe.EVENTS:
        if isinstance(small[event], str):
            assert small[event].startswith("errno ") and isinstance(large[event], str)
        else:
            assert large[event] > small[event] > 0
