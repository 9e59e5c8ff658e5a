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


# ------------------------------------------------ per-phase energy and FLOPs per joule


PHASES = {"energy.baseline_power_w": 50.0,
          "prefill.tokens": 1000, "prefill.time_s": 0.2, "prefill.energy_j": 30.0,
          "decode.tokens": 900, "decode.time_s": 4.0, "decode.energy_j": 560.0,
          "throughput.output_tokens": 1000, "throughput.num_requests": 100}


def test_prefill_and_decode_energy_per_token_gross_and_idle_adjusted() -> None:
    r = make_result(set=PHASES)
    assert METRICS["prefill_energy_per_token"].get(r) == pytest.approx(30.0 / 1000)
    assert METRICS["decode_energy_per_token"].get(r) == pytest.approx(560.0 / 900)
    # minus idle power x the phase's seconds, over the same tokens
    assert METRICS["prefill_energy_per_token_adjusted"].get(r) == pytest.approx(
        (30.0 - 50.0 * 0.2) / 1000)
    assert METRICS["decode_energy_per_token_adjusted"].get(r) == pytest.approx(
        (560.0 - 50.0 * 4.0) / 900)
    for key in ("prefill_energy_per_token_adjusted", "decode_energy_per_token_adjusted",
                "flops_per_joule"):
        m = METRICS[key]
        assert m.unit in ("J", "FLOP/J") and m.label and m.reason(r) is None
    row = flatten_result(r)
    assert row["prefill.adjusted_energy_per_token_j"] == pytest.approx(0.02)
    assert row["decode.adjusted_energy_per_token_j"] == pytest.approx(0.4)


def test_decode_tokens_of_a_result_before_1_2_leave_out_each_requests_first_token() -> None:
    """Until schema 1.2 the harness counted every output token as a decode token; the first
    of each request comes from the prefill forward, so it comes off here."""
    r = make_result(set={**PHASES, "schema_version": "1.1", "decode.tokens": 1000})
    assert METRICS["decode_energy_per_token"].get(r) == pytest.approx(560.0 / 900)
    assert METRICS["decode_energy_per_token_adjusted"].get(r) == pytest.approx(360.0 / 900)
    current = make_result(set={**PHASES, "decode.tokens": 1000})  # 1.2 counts them right
    assert METRICS["decode_energy_per_token"].get(current) == pytest.approx(0.56)


def test_phase_metrics_without_a_baseline_are_null_with_the_baseline_reason() -> None:
    why = "baseline disabled (measurement.baseline_seconds: 0)"
    rs = [make_result(cycle=c, set=PHASES, null={"energy.baseline_power_w": why,
                                                 "energy.adjusted_j": why}) for c in range(3)]
    for key in ("prefill_energy_per_token_adjusted", "decode_energy_per_token_adjusted"):
        assert METRICS[key].get(rs[0]) is None and METRICS[key].reason(rs[0]) == why
    assert METRICS["prefill_energy_per_token"].get(rs[0]) is not None  # gross is measured
    s = summarise(rs, metrics=["decode_energy_per_token_adjusted"]).configs[0]
    assert s.metrics["decode_energy_per_token_adjusted"].n_valid == 0
    assert any(why in w for w in s.warnings)


def test_phase_metrics_without_a_split_say_why() -> None:
    why = "prefill split disabled"
    r = make_result(null={f"{p}.{f}": why for p in ("prefill", "decode")
                          for f in ("tokens", "time_s", "energy_j", "energy_per_token_j")})
    for key in ("prefill_energy_per_token", "decode_energy_per_token",
                "prefill_energy_per_token_adjusted", "decode_energy_per_token_adjusted"):
        assert METRICS[key].get(r) is None and METRICS[key].reason(r) == why


def test_flops_per_joule_is_the_windows_flops_over_its_energy() -> None:
    r = make_result(set={"flops.total": 4e12, "energy.total_j": 200.0})
    m = METRICS["flops_per_joule"]
    assert m.get(r) == pytest.approx(2e10) and m.higher_is_better and m.unit == "FLOP/J"
    assert flatten_result(r)["flops.flops_per_j"] == pytest.approx(2e10)
    off = make_result(null={"flops.total": "disabled (measurement.flops: false)"})
    assert m.get(off) is None and m.reason(off) == "disabled (measurement.flops: false)"
    cpu = make_result(null={"energy.total_j": "no energy source on this CPU-only host"})
    assert m.get(cpu) is None and m.reason(cpu) == "no energy source on this CPU-only host"


def test_per_phase_metrics_get_statistics_across_cycles() -> None:
    """The per-phase metrics take the stats path of every registry metric: mean, CV and a
    CI from 5 cycles (a range below that)."""
    rs = [make_result(cycle=c, set={**PHASES, "decode.energy_j": 560.0 + 10 * c,
                                    "prefill.energy_j": 30.0 + c})
          for c in range(5)]
    keys = ["prefill_energy_per_token_adjusted", "decode_energy_per_token_adjusted",
            "prefill_energy_per_token", "decode_energy_per_token", "flops_per_joule"]
    s = summarise(rs, metrics=keys).configs[0].metrics
    adj = s["decode_energy_per_token_adjusted"]
    assert adj.n_valid == 5 and adj.mean == pytest.approx((580.0 - 200.0) / 900)
    assert adj.ci is not None and adj.ci.low < adj.mean < adj.ci.high
    assert all(s[k].n_valid == 5 and s[k].cv is not None for k in keys)
    few = summarise(rs[:3], metrics=keys).configs[0].metrics["prefill_energy_per_token"]
    assert few.ci is None and few.range_low < few.range_high
