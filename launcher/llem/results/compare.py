"""Two-configuration comparisons (ratio of means with a bootstrap CI) and Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from llem.results.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    CIMethod,
    Resampling,
    expanded_level,
)
from llem.results.metrics import ENERGY_ADJUSTED, ENERGY_GROSS, METRICS, metric
from llem.results.stats import MIN_CYCLES, ConfidenceInterval, ConfigSummary, StudySummary
from llem_schema.errors import ConfigError
from llem_schema.result import ExperimentResult


class RatioComparison(BaseModel):
    metric: str
    unit: str
    a_label: str
    b_label: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    ratio: float = Field(description="mean(B) / mean(A)")
    ci: ConfidenceInterval | None
    significant: bool | None
    note: str


def ratio_interval(xa: Any, xb: Any, level: float) -> tuple[float, float, CIMethod, Resampling,
                                                            int] | None:
    """Bootstrap CI of mean(B) / mean(A), A and B resampled independently, without sampling.

    Each side's bootstrap distribution of the mean is exact or on the grid
    (:func:`llem.results.bootstrap.mean_distribution`); the ratio's distribution is their
    product, ``P(R <= r) = sum_a w_a * P(B <= r * a)``, read at the bias correction's point
    and inverted by bisection at the two BCa probabilities (the limit of scipy's resampled
    quantiles). The acceleration is scipy's two-sample jackknife. Percentile where BCa is
    undefined or a side has fewer than 3 values. None when a side has a non-positive value
    (the ratio is not monotone in B there): use :func:`_ratio_interval_monte_carlo`.
    """
    import numpy as np

    from llem.results.bootstrap import bca_probabilities, jackknife_terms, mean_distribution

    if min(xa.min(), xb.min()) <= 0:
        return None
    atoms_a, wa, kind_a, size_a = mean_distribution(xa)
    atoms_b, wb, kind_b, size_b = mean_distribution(xb)
    cum_b = np.concatenate([[0.0], np.cumsum(wb)])
    theta = float(xb.mean() / xa.mean())

    def cdf(r: Any, side: Literal["left", "right"]) -> Any:
        """P(R < r) (left) or P(R <= r) (right) for each r."""
        t = np.multiply.outer(np.asarray(r, dtype=float), atoms_a)
        return cum_b[np.searchsorted(atoms_b, t, side=side)] @ wa

    # ties (the resamples equal to the samples) count half, within rounding
    eps = 8 * max(xa.size, xb.size) * np.finfo(float).eps
    pct = (cdf([theta * (1 - eps)], "left") + cdf([theta * (1 + eps)], "right")) / 2
    na, nb = xa.size, xb.size
    with np.errstate(divide="ignore", invalid="ignore"):
        jack_a = xb.mean() / ((xa.sum() - xa) / (na - 1))
        jack_b = ((xb.sum() - xb) / (nb - 1)) / xa.mean()
        (num_a, den_a), (num_b, den_b) = jackknife_terms(jack_a), jackknife_terms(jack_b)
        a_hat = (num_a + num_b) / (6.0 * (den_a + den_b) ** 1.5)
    alpha = (1 - level) / 2
    q_lo, q_hi, ok = bca_probabilities(pct, a_hat, alpha, min(na, nb) >= 3)
    q = np.array([float(q_lo[0]), float(q_hi[0])])
    # smallest r with P(R <= r) >= q: bisection between the extreme ratios
    lo = np.full(2, atoms_b[0] / atoms_a[-1])
    hi = np.full(2, atoms_b[-1] / atoms_a[0])
    for _ in range(200):
        mid = (lo + hi) / 2
        if not ((mid > lo) & (mid < hi)).any():
            break
        above = cdf(mid, "right") >= q
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    kind: Resampling = "exact" if kind_a == kind_b == "exact" else "grid"
    return (float(hi[0]), float(hi[1]), "BCa" if bool(ok[0]) else "percentile", kind,
            size_a * size_b)


def _ratio_interval_monte_carlo(xa: Any, xb: Any, level: float, n_resamples: int, seed: int
                                ) -> tuple[float, float, CIMethod] | None:
    """The same interval from ``scipy.stats.bootstrap`` (random resamples)."""
    import warnings

    import numpy as np
    from scipy import stats

    def stat(x: Any, y: Any, axis: int = -1) -> Any:
        return np.mean(y, axis=axis) / np.mean(x, axis=axis)

    method: CIMethod = "BCa" if min(xa.size, xb.size) >= 3 else "percentile"
    for m in ([method, "percentile"] if method == "BCa" else [method]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap((xa, xb), stat, n_resamples=n_resamples,
                                  confidence_level=level, method=m,
                                  vectorized=True, rng=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return float(lo), float(hi), m  # type: ignore[return-value]
    return None


def compare_ratio(a: Sequence[float], b: Sequence[float], *, metric_key: str,
                  a_label: str = "A", b_label: str = "B",
                  n_resamples: int = DEFAULT_RESAMPLES,
                  confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                  expand: bool = True, monte_carlo: bool = False) -> RatioComparison:
    """mean(B)/mean(A) with a bootstrap CI (A and B resampled independently).

    BCa, percentile when BCa is degenerate or a side has fewer than 3 values. The bootstrap
    distribution is computed, not sampled (:func:`ratio_interval`), so the interval does not
    depend on ``seed``: with scipy's 1000 random resamples the upper bound moved by 28% of
    the width over 20 seeds at 5 cycles a side (issue 16). ``monte_carlo`` (or a
    non-positive value) uses ``scipy.stats.bootstrap`` with ``n_resamples`` and ``seed``.
    ``expand`` widens the level for the smaller side's n (:func:`expanded_level`;
    conservative for two samples).
    """
    import numpy as np

    d = metric(metric_key)
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if xa.size == 0 or xb.size == 0:
        side = a_label if xa.size == 0 else b_label
        raise ConfigError(f"{side}: no valid values of {metric_key} to compare")
    ma, mb = float(xa.mean()), float(xb.mean())
    ratio = mb / ma if ma != 0 else math.inf

    ci = None
    level = expanded_level(confidence, int(min(xa.size, xb.size))) if expand else confidence
    if xa.size >= 2 and xb.size >= 2 and ma != 0:
        computed = None if monte_carlo else ratio_interval(xa, xb, level)
        if computed is not None:
            lo, hi, m, kind, size = computed
            ci = ConfidenceInterval(low=lo, high=hi, level=confidence, method=m,
                                    n_resamples=size, resampling=kind, bootstrap_level=level)
        else:
            sampled = _ratio_interval_monte_carlo(xa, xb, level, n_resamples, seed)
            if sampled is not None:
                ci = ConfidenceInterval(low=sampled[0], high=sampled[1], level=confidence,
                                        method=sampled[2], n_resamples=n_resamples,
                                        resampling="monte-carlo", bootstrap_level=level)
    if ci is None:
        sig, note = None, "too few values for a confidence interval (need >= 2 per side)"
    elif ci.low > 1 or ci.high < 1:
        sig = True
        direction = "higher" if ratio > 1 else "lower"
        note = (f"significant: the {confidence:.0%} CI excludes 1 ({b_label} is "
                f"{abs(ratio - 1):.1%} {direction} than {a_label})")
    else:
        sig, note = False, f"not significant: the {confidence:.0%} CI includes 1"
    if min(xa.size, xb.size) < MIN_CYCLES:
        note += f"; fewer than {MIN_CYCLES} cycles on a side, treat with care"
    return RatioComparison(metric=metric_key, unit=d.unit, a_label=a_label, b_label=b_label,
                           n_a=int(xa.size), n_b=int(xb.size), mean_a=ma, mean_b=mb,
                           ratio=ratio, ci=ci, significant=sig, note=note)


def pareto_front(points: Sequence[tuple[float, float]], *, x_higher_is_better: bool,
                 y_higher_is_better: bool) -> list[int]:
    """Indices of non-dominated points (no other point is at least as good on both axes and
    strictly better on one), sorted by x from best to worst."""
    sx = -1.0 if x_higher_is_better else 1.0
    sy = -1.0 if y_higher_is_better else 1.0
    # minimise (sx*x, sy*y): sort by x then y; keep points that strictly improve y
    order = sorted(range(len(points)), key=lambda i: (sx * points[i][0], sy * points[i][1]))
    front: list[int] = []
    best_y = math.inf
    for i in order:
        y = sy * points[i][1]
        if y < best_y:
            front.append(i)
            best_y = y
    return front


# ------------------------------------------------------- metrics that have values
#
# A default metric (energy per token) is null on a host without an energy meter (a CPU
# host: no RAPL). A command left to its default then falls back to the first metric that
# has values and says so; one asked for a null metric explains the null with its reason.


def summary_has_values(summary: StudySummary, key: str) -> bool:
    return any(c.metrics.get(key) is not None and c.metrics[key].mean is not None
               for c in summary.configs)


def summary_null_reason(summary: StudySummary, key: str) -> str:
    """Why ``key`` is null: the first reason a cycle recorded."""
    for c in summary.configs:
        s = c.metrics.get(key)
        if s is not None and s.null_reasons:
            return next(iter(s.null_reasons.values()))
    if not any(key in c.metrics for c in summary.configs):
        return "not in this summary"
    return "null without a recorded reason"


def results_null_reason(results: Sequence[ExperimentResult], key: str) -> str:
    d = metric(key)
    return next((w for w in (d.reason(r) for r in results if d.get(r) is None) if w),
                "null without a recorded reason")


def no_values(key: str, reason: str) -> str:
    """The one line that explains an empty comparison, front or plot."""
    return f"no result has {key}: null because {reason}"


def choose_metric(preferred: str, has_values: Callable[[str], bool],
                  reason: Callable[[str], str], *, flag: str,
                  exclude: Sequence[str] = ()) -> tuple[str, str | None]:
    """``preferred`` (a command's default) if it has values, else the first registry
    metric that does, not in ``exclude``; with a one-line note for stderr when it fell
    back. Raises when no metric has values."""
    metric(preferred)
    if has_values(preferred):
        return preferred, None
    why = reason(preferred)
    for key in METRICS:
        if key != preferred and key not in exclude and has_values(key):
            return key, (f"note: {preferred} has no values in the selected results ({why}); "
                         f"using {key} (choose with {flag})")
    raise ConfigError(f"no metric has values in the selected results; {no_values(preferred, why)}")


# ------------------------------------------------- which energy per token by default
#
# Gross energy per token includes the GPU's idle power, which at small batches is most of
# it (issue 16: 10-14% of the gross is the work itself at batch 8); the idle-adjusted one
# is what the work cost. Where every selected result has an idle baseline the commands
# default to the adjusted one, else to the gross, and say which in one line.


def energy_basis(key: str) -> str | None:
    """What an energy per token includes, for a note or a figure caption; None for any
    other metric."""
    if key == ENERGY_ADJUSTED:
        return (f"energy per token is idle-adjusted ({ENERGY_ADJUSTED}: the baseline's idle "
                "power x time subtracted)")
    if key == ENERGY_GROSS:
        return f"energy per token is gross ({ENERGY_GROSS}: idle power included)"
    return None


def summary_has_baseline(summary: StudySummary) -> bool:
    """Every configuration with a gross energy per token has the idle-adjusted one too."""
    def has(c: ConfigSummary, key: str) -> bool:
        return c.metrics.get(key) is not None and c.metrics[key].mean is not None

    gross = [c for c in summary.configs if has(c, ENERGY_GROSS)]
    return bool(gross) and all(has(c, ENERGY_ADJUSTED) for c in gross)


def results_have_baseline(results: Sequence[ExperimentResult]) -> bool:
    """Every result with a gross energy per token has the idle-adjusted one too."""
    gross, adj = metric(ENERGY_GROSS), metric(ENERGY_ADJUSTED)
    measured = [r for r in results if gross.get(r) is not None]
    return bool(measured) and all(adj.get(r) is not None for r in measured)


def choose_energy_metric(have_baseline: bool, has_values: Callable[[str], bool],
                         reason: Callable[[str], str], *, flag: str,
                         exclude: Sequence[str] = ()) -> tuple[str, str | None]:
    """A command's default metric: the idle-adjusted energy per token where the selected
    results have a baseline, else the gross one, else (a CPU host: no energy) the first
    metric with values (:func:`choose_metric`). The note (one line for stderr) says which
    energy per token it is, or why it fell back."""
    if have_baseline and ENERGY_ADJUSTED not in exclude and has_values(ENERGY_ADJUSTED):
        return ENERGY_ADJUSTED, (f"note: {energy_basis(ENERGY_ADJUSTED)}; the gross with "
                                 f"{flag} {ENERGY_GROSS}")
    key, note = choose_metric(ENERGY_GROSS, has_values, reason, flag=flag, exclude=exclude)
    if note is None:
        why = (f"no idle baseline: {reason(ENERGY_ADJUSTED)}" if not has_values(ENERGY_ADJUSTED)
               else "not every selected result has an idle baseline")
        note = f"note: {energy_basis(ENERGY_GROSS)}; {why}"
    return key, note


def require_values(summary: StudySummary, *keys: str) -> None:
    """Raise the reason when a metric asked for is null in every configuration."""
    for key in keys:
        metric(key)
        if not summary_has_values(summary, key):
            raise ConfigError(no_values(key, summary_null_reason(summary, key)))


def pareto_configs(summary: StudySummary, x: str, y: str) -> list[ConfigSummary]:
    """Configurations on the Pareto front of the mean of metrics ``x`` and ``y``. Never
    empty without a reason: a metric null everywhere raises why (from null_reasons)."""
    dx, dy = metric(x), metric(y)
    require_values(summary, x, y)
    cands = [c for c in summary.configs
             if c.metrics.get(x) and c.metrics.get(y)
             and c.metrics[x].mean is not None and c.metrics[y].mean is not None]
    if not cands:
        raise ConfigError(f"no configuration has both {x} and {y} (each is null where the "
                          "other has a value)")
    pts = [(c.metrics[x].mean, c.metrics[y].mean) for c in cands]
    idx = pareto_front(pts, x_higher_is_better=dx.higher_is_better,  # type: ignore[arg-type]
                       y_higher_is_better=dy.higher_is_better)
    return [cands[i] for i in idx]
