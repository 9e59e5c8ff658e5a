"""Statistics across cycles: per configuration, for the metrics a paper reports.

For each configuration (grouped by ``config_hash``) and metric: mean, std (ddof=1), p5, p95,
CV, n_valid and a 95% bootstrap CI of the **mean**.

Why our own bootstrap loop: a study of 2,000 configurations x 5 metrics would call
``scipy.stats.bootstrap`` 10,000 times. :func:`bootstrap_mean_ci` runs the same BCa math as
scipy (Efron & Tibshirani eq. 14.10/15.36, scipy's ``_bca_interval``; tests check equality
with scipy on the same random stream) over many groups at once with numpy.

BCa is degenerate when the data are all equal (acceleration 0/0), when the observed mean
lies outside every resample (bias-correction +-inf) or with fewer than 3 values (a jackknife
of 2 points says nothing about skew); then the percentile interval is used and the method
recorded. One valid value gives no interval at all.

Small-sample expansion (T. Hesterberg, "What teachers should know about the bootstrap", The
American Statistician 69(4), 2015: the "expanded percentile interval", applied here to BCa
too): bootstrap intervals are too narrow at small n -- the resampling distribution has
the plug-in spread sqrt((n-1)/n)*s and uses z where Student's t applies -- so a "95%" BCa
interval over 5 cycles covers the true mean only ~81% of the time. By default the BCa (or
percentile) interval is computed at the level whose normal quantile equals
``sqrt(n/(n-1)) * t_{n-1}`` of the requested level (:func:`expanded_level`); the interval
records both levels. Measured (lognormal(0, 0.5), 10 seeds x 500 draws): n=5/10/30 plain
81/88/92% -> expanded 88/93/93.5% (docs/methodology.md).

Outliers are flagged, never dropped: a cycle is an outlier in a metric when
``|x - median| > 3 * 1.4826 * MAD`` (the MAD scaled to a normal sigma). When MAD is 0 (more
than half the values equal) the mean absolute deviation from the median x 1.2533 is used
instead (Iglewicz & Hoaglin); when that is 0 too nothing is flagged. Needs >= 3 values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from llem_schema.result import ExperimentResult

MIN_CYCLES = 5
DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
OUTLIER_K = 3.0
OUTLIER_RULE = (
    "|x - median| > 3 * 1.4826 * MAD (MAD = 0: 1.2533 * mean |x - median|); needs >= 3 "
    "values; flagged, never dropped"
)

CIMethod = Literal["BCa", "percentile"]


@dataclass(frozen=True)
class MetricDef:
    """One reported metric: how to read it from a result and why it may be null."""

    key: str
    label: str
    unit: str
    get: Callable[[ExperimentResult], float | None]
    reason: Callable[[ExperimentResult], str | None]
    higher_is_better: bool
    column: str  # the flattened export column holding it


def _lat(name: str) -> Callable[[ExperimentResult], float | None]:
    def get(r: ExperimentResult) -> float | None:
        d = getattr(r.latency, name)
        return None if d is None else d.p50

    return get


METRICS: dict[str, MetricDef] = {
    m.key: m
    for m in (
        MetricDef("energy_per_token", "energy / output token", "J",
                  lambda r: r.energy.per_output_token_j,
                  lambda r: r.energy.null_reasons.get("per_output_token_j"), False,
                  "energy.per_output_token_j"),
        MetricDef("tokens_per_s", "output tokens / s", "tok/s",
                  lambda r: r.throughput.output_tokens_per_s,
                  lambda r: r.throughput.null_reasons.get("output_tokens_per_s"), True,
                  "throughput.output_tokens_per_s"),
        MetricDef("ttft_p50", "TTFT p50", "s", _lat("ttft"),
                  lambda r: r.latency.null_reasons.get("ttft"), False, "latency.ttft.p50"),
        MetricDef("itl_p50", "ITL p50", "s", _lat("itl"),
                  lambda r: r.latency.null_reasons.get("itl"), False, "latency.itl.p50"),
        MetricDef("total_energy", "total energy", "J", lambda r: r.energy.total_j,
                  lambda r: r.energy.null_reasons.get("total_j"), False, "energy.total_j"),
    )
}


def metric(key: str) -> MetricDef:
    """Look up a metric by key, with a one-line error listing the valid ones."""
    if key not in METRICS:
        from llem_schema.errors import ConfigError, did_you_mean

        raise ConfigError(f"unknown metric '{key}'{did_you_mean(key, list(METRICS))}; "
                          f"choose from {', '.join(METRICS)}")
    return METRICS[key]


# --------------------------------------------------------------------------- models


class ConfidenceInterval(BaseModel):
    low: float
    high: float
    level: float = Field(description="The coverage asked for (e.g. 0.95).")
    method: CIMethod
    n_resamples: int
    bootstrap_level: float | None = Field(
        None, description="The level the bootstrap interval was computed at: above `level` "
        "when the small-sample expansion is on (see expanded_level), else equal to it.")


class MetricSummary(BaseModel):
    metric: str
    unit: str
    n: int = Field(description="Runs of this configuration that finished ok.")
    n_valid: int = Field(description="Of those, runs where the metric is not null.")
    mean: float | None = None
    std: float | None = None
    p5: float | None = None
    p95: float | None = None
    cv: float | None = None
    ci: ConfidenceInterval | None = None
    ci_note: str | None = Field(None, description="Why there is no CI or why it is percentile.")
    cycles: list[int] = Field(default_factory=list)
    values: list[float | None] = Field(default_factory=list, description="Per cycle, in order.")
    outlier_cycles: list[int] = Field(default_factory=list)
    null_reasons: dict[int, str] = Field(default_factory=dict, description="cycle -> reason")


class ConfigSummary(BaseModel):
    config_hash: str
    name: str | None = None
    experiment_ids: list[str]
    backend: str
    model: str
    params: dict[str, Any] = Field(
        default_factory=dict, description="Config values that differ between this study's configs."
    )
    n_runs: int
    n_failed: int
    metrics: dict[str, MetricSummary]
    warnings: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        if self.params:
            return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.params.items())
        return self.name or self.config_hash


class StudySummary(BaseModel):
    kind: Literal["llem-study-summary"] = "llem-study-summary"
    study_id: str | None = None
    generated_at: str
    statistic: str = "mean across cycles"
    confidence_level: float
    n_resamples: int
    seed: int
    small_sample_expansion: bool = Field(
        True, description="CIs widened for small n (Hesterberg); see each ci.bootstrap_level.")
    outlier_rule: str = OUTLIER_RULE
    min_cycles_recommended: int = MIN_CYCLES
    n_results: int
    configs: list[ConfigSummary]
    warnings: list[str] = Field(default_factory=list)

    def config(self, selector: str) -> ConfigSummary:
        """A config by hash prefix, experiment id (prefix) or name."""
        from llem_schema.errors import ConfigError

        hits = [c for c in self.configs
                if c.config_hash.startswith(selector) or c.name == selector
                or any(e.startswith(selector) for e in c.experiment_ids)]
        if len(hits) != 1:
            what = "matches no" if not hits else f"matches {len(hits)}"
            raise ConfigError(f"'{selector}' {what} configuration; use a config hash prefix or "
                              "experiment id (see `llem results show`)")
        return hits[0]


# ----------------------------------------------------------------------- bootstrap


def _quantile_rows(sorted_b: Any, q: Any) -> Any:
    """Per-row linear-interpolated quantile (numpy's default method) of sorted rows."""
    import numpy as np

    b = sorted_b.shape[1]
    pos = np.clip(q, 0.0, 1.0) * (b - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, b - 1)
    frac = pos - lo
    rows = np.arange(sorted_b.shape[0])
    a, c = sorted_b[rows, lo], sorted_b[rows, hi]
    return a + frac * (c - a)


def expanded_level(confidence: float, n: int) -> float:
    """The bootstrap level that gives ``confidence`` coverage at sample size ``n``.

    Hesterberg's expansion: ``z' = sqrt(n/(n-1)) * t_{1-alpha/2, n-1}``, level
    ``1 - 2*(1 - Phi(z'))``; 0.95 becomes 0.998 at n=5, 0.983 at n=10, 0.9625 at n=30, and
    tends to 0.95 as n grows. n < 2 has no interval; the level is returned unchanged.
    """
    if n < 2:
        return confidence
    # scipy.special, not scipy.stats: the latter costs ~1 s to import on 2 cores
    from scipy.special import ndtr, stdtrit

    z = math.sqrt(n / (n - 1)) * float(stdtrit(n - 1, 1 - (1 - confidence) / 2))
    return float(1 - 2 * ndtr(-z))


def bootstrap_mean_ci(
    samples: Any,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    rng: Any = None,
    chunk: int = 256,
) -> tuple[Any, Any, list[CIMethod]]:
    """CI of the mean for each row of ``samples`` (shape ``(groups, n)``, no NaNs).

    Returns ``(low, high, methods)``. BCa where it is defined, else percentile (see module
    docstring). With ``groups == 1`` and the same ``rng`` this equals
    ``scipy.stats.bootstrap(..., method='BCa')`` (same resample stream, same formulas).
    """
    import numpy as np
    from scipy.special import ndtr, ndtri

    x = np.asarray(samples, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    g, n = x.shape
    rng = np.random.default_rng(rng)
    alpha = (1 - confidence) / 2
    theta = x.mean(axis=1)
    theta_b = np.empty((g, n_resamples))
    for start in range(0, g, chunk):
        stop = min(g, start + chunk)
        idx = rng.integers(0, n, (stop - start, n_resamples, n))
        rows = np.arange(stop - start)[:, None, None]
        theta_b[start:stop] = x[start:stop][rows, idx].mean(axis=-1)

    # bias correction z0 (scipy's _percentile_of_score: mean of < and <=)
    t = theta[:, None]
    pct = ((theta_b < t).sum(axis=1) + (theta_b <= t).sum(axis=1)) / (2 * n_resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = ndtri(pct)
        # acceleration from the jackknife; leave-one-out means in closed form
        if n > 1:
            jack = (x.sum(axis=1, keepdims=True) - x) / (n - 1)
            u = (n - 1) * (jack.mean(axis=1, keepdims=True) - jack)
            num = (u**3).sum(axis=1) / n**3
            den = (u**2).sum(axis=1) / n**2
            a_hat = num / (6.0 * den**1.5)
        else:
            a_hat = np.full(g, np.nan)
        z_lo, z_hi = ndtri(alpha), -ndtri(alpha)
        a1 = ndtr(z0 + (z0 + z_lo) / (1 - a_hat * (z0 + z_lo)))
        a2 = ndtr(z0 + (z0 + z_hi) / (1 - a_hat * (z0 + z_hi)))
    bca_ok = np.isfinite(a1) & np.isfinite(a2) & np.isfinite(z0) & (n >= 3)
    q_lo = np.where(bca_ok, a1, alpha)
    q_hi = np.where(bca_ok, a2, 1 - alpha)
    s = np.sort(theta_b, axis=1)
    low, high = _quantile_rows(s, q_lo), _quantile_rows(s, q_hi)
    methods: list[CIMethod] = ["BCa" if ok else "percentile" for ok in bca_ok]
    return low, high, methods


# --------------------------------------------------------------------- descriptives


def _describe_rows(x: Any) -> dict[str, Any]:
    """Descriptives and outlier flags for each row of ``x`` (groups of equal size n >= 1)."""
    import numpy as np

    n = x.shape[1]
    mean = x.mean(axis=1)
    std = x.std(axis=1, ddof=1) if n > 1 else np.full(x.shape[0], np.nan)
    p5, p95 = np.percentile(x, [5, 95], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(mean != 0, std / np.abs(mean), np.nan)
    med = np.median(x, axis=1, keepdims=True)
    dev = np.abs(x - med)
    scale = 1.4826 * np.median(dev, axis=1, keepdims=True)
    scale = np.where(scale == 0, 1.2533 * dev.mean(axis=1, keepdims=True), scale)
    out = (dev > OUTLIER_K * scale) & (scale > 0) & (n >= 3)
    return {"mean": mean, "std": std, "p5": p5, "p95": p95, "cv": cv, "outliers": out}


def outlier_mask(values: Sequence[float]) -> list[bool]:
    """The documented MAD rule (module docstring): True where a value is an outlier."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return []
    return [bool(v) for v in _describe_rows(x[None, :])["outliers"][0]]


def describe(values: Sequence[float]) -> dict[str, float | None]:
    """mean, std (ddof=1), p5, p95, CV (std/|mean|) of the valid values; None if undefined."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return {"mean": None, "std": None, "p5": None, "p95": None, "cv": None}
    d = _describe_rows(x[None, :])
    return {k: (None if not np.isfinite(d[k][0]) else float(d[k][0]))
            for k in ("mean", "std", "p5", "p95", "cv")}


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k != "extra":
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def varying_params(configs: Iterable[dict[str, Any]]) -> list[str]:
    """Dotted config paths whose value differs between configurations (the swept ones)."""
    return varying_params_flat([_flat(c) for c in configs])


def varying_params_flat(flats: list[dict[str, Any]]) -> list[str]:
    if len(flats) < 2:
        return []
    keys = sorted(set().union(*flats))
    out = []
    for k in keys:
        if k == "name":
            continue
        v0 = flats[0].get(k)
        t0 = type(v0)
        if any(f.get(k) != v0 or type(f.get(k)) is not t0 for f in flats):
            out.append(k)
    return out


# ---------------------------------------------------------------------- summaries


def summarise(
    results: Iterable[ExperimentResult],
    *,
    metrics: Sequence[str] = tuple(METRICS),
    study_id: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    expand: bool = True,
) -> StudySummary:
    """Per-configuration statistics across cycles. Failed runs are counted, not averaged.

    Groups of equal size are processed together with numpy (descriptives, outliers,
    bootstrap), so thousands of configurations cost about as much as a few. ``expand``
    applies the small-sample expansion (module docstring); off gives plain BCa.
    """
    import numpy as np

    groups: dict[str, list[ExperimentResult]] = {}
    n_results = 0
    for r in results:
        groups.setdefault(r.config_hash, []).append(r)
        n_results += 1
        if study_id is None:
            study_id = r.study_id
    defs = [metric(m) for m in metrics]

    first = {h: rs[0] for h, rs in groups.items()}
    flats = {h: _flat(r.config.model_dump(mode="json")) for h, r in first.items()}
    varying = varying_params_flat(list(flats.values()))

    configs: list[ConfigSummary] = []
    # n_valid -> [(summary, valid values, valid cycles)]
    buckets: dict[int, list[tuple[MetricSummary, list[float], list[int]]]] = {}
    for h, rs in groups.items():
        rs = sorted(rs, key=lambda r: (r.cycle, r.run_id))
        ok = [r for r in rs if r.status == "ok"]
        cycles = [r.cycle for r in ok]
        n_failed = len(rs) - len(ok)
        ms: dict[str, MetricSummary] = {}
        for d in defs:
            vals: list[float | None] = []
            reasons: dict[int, str] = {}
            for r in ok:
                v = d.get(r)
                if v is None or not math.isfinite(v):
                    vals.append(None)
                    reasons[r.cycle] = d.reason(r) or ("not finite" if v is not None
                                                       else "null without a reason")
                else:
                    vals.append(float(v))
            valid = [v for v in vals if v is not None]
            s = MetricSummary(metric=d.key, unit=d.unit, n=len(ok), n_valid=len(valid),
                              cycles=cycles, values=vals, null_reasons=reasons)
            if valid:
                buckets.setdefault(len(valid), []).append(
                    (s, valid, [c for c, v in zip(cycles, vals) if v is not None]))
            else:
                s.ci_note = "no valid values"
            ms[d.key] = s
        r0 = first[h]
        configs.append(ConfigSummary(
            config_hash=h, name=r0.config.name,
            experiment_ids=sorted({r.experiment_id for r in rs}),
            backend=r0.backend, model=r0.model,
            params={k: flats[h].get(k) for k in varying},
            n_runs=len(rs), n_failed=n_failed, metrics=ms,
            warnings=[f"{n_failed} failed run(s) excluded from the statistics"]
            if n_failed else []))

    def num(v: float) -> float | None:
        return v if math.isfinite(v) else None

    rng = np.random.default_rng(seed)
    for n in sorted(buckets):
        items = buckets[n]
        x = np.array([v for _, v, _ in items])
        # .tolist() once per bucket: indexing numpy arrays element by element is slow
        desc = {k: v.tolist() for k, v in _describe_rows(x).items()}
        level = expanded_level(confidence, n) if expand else confidence
        if n >= 2:
            low_a, high_a, methods = bootstrap_mean_ci(x, n_resamples=n_resamples,
                                                       confidence=level, rng=rng)
            low, high = low_a.tolist(), high_a.tolist()
        for i, (s, vals, vcycles) in enumerate(items):
            s.mean, s.std, s.p5, s.p95, s.cv = (num(desc[k][i])
                                                for k in ("mean", "std", "p5", "p95", "cv"))
            s.outlier_cycles = [c for c, o in zip(vcycles, desc["outliers"][i]) if o]
            if n < 2:
                s.ci_note = "one valid value: no confidence interval"
                continue
            s.ci = ConfidenceInterval(low=low[i], high=high[i], level=confidence,
                                      method=methods[i], n_resamples=n_resamples,
                                      bootstrap_level=level)
            if methods[i] == "percentile":
                s.ci_note = ("all values equal: BCa undefined, percentile used"
                             if min(vals) == max(vals) else
                             "fewer than 3 values: percentile interval" if n < 3 else
                             "BCa degenerate: percentile used")

    few = 0
    for c in configs:
        for s in c.metrics.values():
            if s.outlier_cycles:
                c.warnings.append(f"{s.metric}: cycle(s) {s.outlier_cycles} are outliers "
                                  "(kept; see outlier_rule)")
        measured = [s.n_valid for s in c.metrics.values() if s.n_valid > 0]
        n_valid_min = min(measured, default=0)
        if n_valid_min < MIN_CYCLES:
            few += 1
            c.warnings.append(f"only {n_valid_min} valid cycle(s) for some metric "
                              f"(< {MIN_CYCLES}): confidence intervals are unreliable; "
                              "run more cycles")
        empty = [s for s in c.metrics.values() if s.n_valid == 0 and s.null_reasons]
        if empty:
            reason = next(iter(empty[0].null_reasons.values()))
            c.warnings.append(f"not measured: {', '.join(s.metric for s in empty)} ({reason})")
    study_warnings = []
    if few:
        study_warnings.append(f"{few} of {len(configs)} configuration(s) have fewer than "
                              f"{MIN_CYCLES} valid cycles")
    return StudySummary(study_id=study_id, generated_at=datetime.now(timezone.utc).isoformat(),
                        confidence_level=confidence, n_resamples=n_resamples, seed=seed,
                        small_sample_expansion=expand,
                        n_results=n_results, configs=configs, warnings=study_warnings)


# ------------------------------------------------------------------ compare / pareto


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


def compare_ratio(a: Sequence[float], b: Sequence[float], *, metric_key: str,
                  a_label: str = "A", b_label: str = "B",
                  n_resamples: int = DEFAULT_RESAMPLES,
                  confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                  expand: bool = True) -> RatioComparison:
    """mean(B)/mean(A) with a bootstrap CI (A and B resampled independently).

    One call, so scipy.stats.bootstrap is used directly: BCa, percentile when BCa is
    degenerate (NaN bounds) or a side has fewer than 3 values. ``expand`` widens the level
    for the smaller side's n (:func:`expanded_level`; conservative for two samples).
    """
    import warnings

    import numpy as np
    from scipy import stats

    d = metric(metric_key)
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if xa.size == 0 or xb.size == 0:
        from llem_schema.errors import ConfigError

        side = a_label if xa.size == 0 else b_label
        raise ConfigError(f"{side}: no valid values of {metric_key} to compare")
    ma, mb = float(xa.mean()), float(xb.mean())
    ratio = mb / ma if ma != 0 else math.inf

    def stat(x: Any, y: Any, axis: int = -1) -> Any:
        return np.mean(y, axis=axis) / np.mean(x, axis=axis)

    ci = None
    level = expanded_level(confidence, int(min(xa.size, xb.size))) if expand else confidence
    if xa.size >= 2 and xb.size >= 2 and ma != 0:
        method: CIMethod = "BCa" if min(xa.size, xb.size) >= 3 else "percentile"
        for m in ([method, "percentile"] if method == "BCa" else [method]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = stats.bootstrap((xa, xb), stat, n_resamples=n_resamples,
                                      confidence_level=level, method=m,
                                      vectorized=True, rng=np.random.default_rng(seed))
            lo, hi = res.confidence_interval
            if np.isfinite(lo) and np.isfinite(hi):
                ci = ConfidenceInterval(low=float(lo), high=float(hi), level=confidence,
                                        method=m, n_resamples=n_resamples,  # type: ignore[arg-type]
                                        bootstrap_level=level)
                break
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


def pareto_configs(summary: StudySummary, x: str, y: str) -> list[ConfigSummary]:
    """Configurations on the Pareto front of the mean of metrics ``x`` and ``y``."""
    dx, dy = metric(x), metric(y)
    cands = [c for c in summary.configs
             if c.metrics.get(x) and c.metrics.get(y)
             and c.metrics[x].mean is not None and c.metrics[y].mean is not None]
    pts = [(c.metrics[x].mean, c.metrics[y].mean) for c in cands]
    idx = pareto_front(pts, x_higher_is_better=dx.higher_is_better,  # type: ignore[arg-type]
                       y_higher_is_better=dy.higher_is_better)
    return [cands[i] for i in idx]
