"""The metric registry: idle-adjusted energy per token and tokens per joule, null with the
baseline's reason where no baseline exists, and every metric a column of the export."""

from __future__ import annotations

import pytest

from llem.results.export import flatten_result
from llem.results.metrics import METRICS
from llem.results.stats import summarise
from tests.factories import make_result


def test_adjusted_energy_per_token_subtracts_idle_power() -> None:
    r = make_result(set={"energy.total_j": 100.0, "energy.adjusted_j": 40.0,
                         "throughput.output_tokens": 200})
    assert METRICS["energy_per_token_adjusted"].get(r) == pytest.approx(0.2)
    assert METRICS["tokens_per_joule"].get(r) == pytest.approx(2.0)
    row = flatten_result(r)
    assert row["energy.adjusted_per_output_token_j"] == pytest.approx(0.2)
    assert row["energy.output_tokens_per_j"] == pytest.approx(2.0)


def test_without_a_baseline_the_adjusted_metric_is_null_with_its_reason() -> None:
    r = make_result(null={"energy.adjusted_j": "baseline disabled (measurement.baseline_"
                                               "seconds: 0)"})
    m = METRICS["energy_per_token_adjusted"]
    assert m.get(r) is None and "baseline disabled" in m.reason(r)
    s = summarise([r], metrics=["energy_per_token_adjusted"]).configs[0]
    assert s.metrics["energy_per_token_adjusted"].n_valid == 0
    assert any("baseline disabled" in w for w in s.warnings)


def test_energy_per_pass_normalises_windows_of_different_lengths() -> None:
    """The measured window repeats the workload until it spans min_window_seconds: cycles
    of one configuration cover 2, 3 or 4 passes. Per pass they agree; totals do not."""
    rs = [make_result(cycle=c, set={"energy.total_j": 150.0 * p, "setup.measured_passes": p})
          for c, p in enumerate((2, 3, 4, 2, 3))]
    assert [METRICS["energy_per_pass"].get(r) for r in rs] == [150.0] * 5
    s = summarise(rs, metrics=["energy_per_pass", "total_energy"]).configs[0].metrics
    assert s["energy_per_pass"].mean == pytest.approx(150.0) and s["energy_per_pass"].cv == 0
    assert s["total_energy"].cv > 0.2
    assert flatten_result(rs[2])["energy.per_pass_j"] == pytest.approx(150.0)


def test_energy_per_pass_is_null_with_the_energy_reason() -> None:
    r = make_result(null={"energy.total_j": "no energy source on this CPU-only host"})
    m = METRICS["energy_per_pass"]
    assert m.get(r) is None and m.reason(r) == "no energy source on this CPU-only host"
    assert m.unit == "J" and not m.higher_is_better
