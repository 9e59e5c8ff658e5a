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
