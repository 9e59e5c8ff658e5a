"""Exact bootstrap at small n, the Monte-Carlo tail rule, and how a CI records its resampling
(issue 16: at n=5 a bound moved by up to 19% of the interval width over 20 seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llem.results import bootstrap, stats
from llem_schema.config import ExperimentConfig
from tests.factories import make_result


def _seed_spread(x: np.ndarray, seeds: int = 20, **kw: object) -> tuple[float, float]:
    """Max - min of the low and of the high endpoint over seeds, as shares of the mean width."""
    level = bootstrap.expanded_level(0.95, x.size)
    ends = np.array([[a[0] for a in bootstrap.bootstrap_mean_ci(x, confidence=level, rng=s,
                                                               **kw)[:2]]
                     for s in range(seeds)])
    width = float(np.mean(ends[:, 1] - ends[:, 0]))
    spread = ends.max(axis=0) - ends.min(axis=0)
    return float(spread[0] / width), float(spread[1] / width)


def test_endpoints_do_not_move_with_the_seed_at_five_cycles() -> None:
    """20 seeds, n=5, expanded level 0.998: both ends move < 1% of the width.

    1000 Monte-Carlo resamples (the code before issue 16) move them 6-8% on this sample.
    """
    x = np.random.default_rng(42).lognormal(0.0, 0.5, 5)
    low, high = _seed_spread(x)
    assert low < 0.01 and high < 0.01, (low, high)
    mc_low, mc_high = _seed_spread(x, exact_max_n=0, tail_resamples=0)
    assert max(mc_low, mc_high) > 0.03, (mc_low, mc_high)  # what the exact path removes


def test_tail_rule_steadies_monte_carlo_endpoints() -> None:
    """n=12 (Monte Carlo): ~50 resamples per tail halve the seed spread of 1000 resamples."""
    x = np.random.default_rng(7).lognormal(0.0, 0.5, 12)
    kind, b = bootstrap.resampling_plan(12, bootstrap.expanded_level(0.95, 12))
    assert kind == "monte-carlo" and b > 3 * bootstrap.DEFAULT_RESAMPLES
    ruled = max(_seed_spread(x))
    plain = max(_seed_spread(x, tail_resamples=0))
    assert ruled < plain / 2, (ruled, plain)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_exact_distribution_has_the_plug_in_moments(n: int) -> None:
    """Atoms: C(2n-1, n) count vectors summing to n, probabilities summing to 1; the mean of
    the resample means is the sample mean and their variance the plug-in variance / n."""
    counts, w = bootstrap.exact_atoms(n)
    assert counts.shape == (math.comb(2 * n - 1, n), n)
    assert (counts.sum(axis=1) == n).all() and (counts >= 0).all()
    assert len({tuple(c) for c in counts}) == len(counts)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    x = np.random.default_rng(n).lognormal(0.0, 1.0, n)
    theta_b = counts @ x / n
    mean = float(w @ theta_b)
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert float(w @ (theta_b - mean) ** 2) == pytest.approx(np.var(x) / n, rel=1e-10,
                                                             abs=1e-15)


@pytest.mark.parametrize("n", [6, 8])
def test_exact_interval_is_the_limit_of_monte_carlo(n: int) -> None:
    """Weighted BCa on the enumerated distribution agrees with 400,000 random resamples
    within 1% of the width (a wrong weighting of z0 or of the quantiles moves it further)."""
    x = np.random.default_rng(3).lognormal(0.0, 0.5, n)
    le, he, me = bootstrap.bootstrap_mean_ci(x, confidence=0.95)
    lm, hm, mm = bootstrap.bootstrap_mean_ci(x, confidence=0.95, n_resamples=400_000,
                                             exact_max_n=0, tail_resamples=0, rng=1)
    assert me == mm == ["BCa"]
    width = he[0] - le[0]
    assert abs(lm[0] - le[0]) < 0.01 * width and abs(hm[0] - he[0]) < 0.01 * width


def test_exact_coverage_matches_monte_carlo_coverage() -> None:
    """n=5, expanded level, 4 x 500 lognormal(0, 0.5) studies: exact covers as Monte Carlo
    (both ~88-89%, docs/methodology.md) within 3 points."""
    level = bootstrap.expanded_level(0.95, 5)
    true_mean = math.exp(0.5**2 / 2)

    def coverage(**kw: object) -> float:
        hits = []
        for seed in range(4):
            rng = np.random.default_rng(seed)
            data = rng.lognormal(0.0, 0.5, (500, 5))
            low, high, _ = bootstrap.bootstrap_mean_ci(data, confidence=level, rng=rng, **kw)
            hits.append(np.mean((low <= true_mean) & (true_mean <= high)))
        return float(np.mean(hits))

    exact, mc = coverage(), coverage(exact_max_n=0, tail_resamples=0)
    assert 0.85 < exact < 0.93 and abs(exact - mc) < 0.03, (exact, mc)


def test_exact_ties_count_half_like_scipy() -> None:
    """Symmetric data: half the weight lies below the mean, the all-ones atom is a tie, so
    z0 = 0; the acceleration is 0 too and BCa is the symmetric percentile interval."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    low, high, methods = bootstrap.bootstrap_mean_ci(x, confidence=0.9)
    assert methods == ["BCa"]
    assert x.mean() - low[0] == pytest.approx(high[0] - x.mean(), rel=1e-9)


def test_batched_rows_equal_single_rows() -> None:
    """A row's interval depends on its values only, not on the rows batched with it."""
    rng = np.random.default_rng(5)
    for n in (5, 11):
        x = rng.lognormal(0.0, 0.5, (3, n))
        low, high, _ = bootstrap.bootstrap_mean_ci(x, rng=9)
        for i in range(3):
            lo1, hi1, _ = bootstrap.bootstrap_mean_ci(x[i], rng=9)
            assert (low[i], high[i]) == pytest.approx((lo1[0], hi1[0]), rel=1e-12)


def test_resampling_plan() -> None:
    assert bootstrap.resampling_plan(5, 0.998) == ("exact", 126)
    assert bootstrap.resampling_plan(8, 0.99) == ("exact", 6435)
    # 50 per tail at 98.3% (n=10): ceil(50 / 0.0085)
    kind, b = bootstrap.resampling_plan(10, 0.983)
    assert kind == "monte-carlo" and b == math.ceil(50 / ((1 - 0.983) / 2))
    assert bootstrap.resampling_plan(10, 0.9999) == ("monte-carlo", bootstrap.MAX_RESAMPLES)
    assert bootstrap.resampling_plan(10, 0.5) == ("monte-carlo", bootstrap.DEFAULT_RESAMPLES)
    assert bootstrap.resampling_plan(5, 0.95, exact_max_n=0, tail_resamples=0) == (
        "monte-carlo", bootstrap.DEFAULT_RESAMPLES)
    assert bootstrap.resampling_plan(10, 0.9999, n_resamples=50_000) == ("monte-carlo", 50_000)


def _results(n: int, seed: int = 0) -> list:
    cfg = ExperimentConfig.model_validate({"workload": {"batch_size": 2}})
    return [make_result(config=cfg, cycle=c, seed=seed + c) for c in range(n)]


def test_summary_records_how_each_ci_was_resampled() -> None:
    five = stats.summarise(_results(5)).configs[0].metrics["tokens_per_s"].ci
    assert five is not None and (five.resampling, five.n_resamples) == ("exact", 126)
    twelve = stats.summarise(_results(12)).configs[0].metrics["tokens_per_s"].ci
    assert twelve is not None and twelve.resampling == "monte-carlo"
    assert twelve.n_resamples == bootstrap.resampling_plan(12, twelve.bootstrap_level)[1]
    # seed-independent at n=5: the summary's seed no longer changes the interval
    other = stats.summarise(_results(5), seed=123).configs[0].metrics["tokens_per_s"].ci
    assert other == five


def test_summaries_written_before_the_field_still_load() -> None:
    s = stats.summarise(_results(5))
    data = s.model_dump(mode="json")
    for c in data["configs"]:
        for m in c["metrics"].values():
            if m["ci"] is not None:
                del m["ci"]["resampling"]
                m["ci"]["n_resamples"] = 1000
    old = stats.StudySummary.model_validate(data)
    ci = old.configs[0].metrics["tokens_per_s"].ci
    assert ci is not None and (ci.resampling, ci.n_resamples) == ("monte-carlo", 1000)
