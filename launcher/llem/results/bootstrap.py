"""Bootstrap CIs of the mean for many groups at once: scipy's BCa math vectorised with numpy,
with Hesterberg's small-sample expansion (see :mod:`llem.results.stats` for why).

Three ways to get the bootstrap distribution of the mean (:func:`resampling_plan` picks):

* **exact** (n <= ``EXACT_MAX_N``): a resample of n values is fully described by how often
  it draws each value, a multiset of counts ``c`` summing to n; there are C(2n-1, n) of them
  (126 at n=5, 6435 at n=8), each with multinomial probability ``n!/prod(c_i!) / n^n``.
  Enumerating them gives the distribution Monte Carlo only samples, so the interval has no
  seed dependence. This matters most at small n, where the expanded level is extreme (0.998
  at n=5): 1000 Monte-Carlo resamples put about one resample in each tail and an upper bound
  moved by up to 19% of the interval width over 20 seeds (issue 16).
* **grid** (larger n, the default): the resample mean is the average of n independent draws
  from the sample, so its distribution is the n-fold convolution of the sample's own
  distribution, computed with one FFT. The values are placed on ``GRID_POINTS`` evenly spaced
  points spanning the sample, each value's probability split between its two neighbouring
  points in proportion to its distance from them (linear binning: every value's expected
  position is kept, so the resample mean keeps its exact expectation, and the variance of one
  draw grows by at most h^2/4 for a grid step h: 0.1% of the plug-in variance at n=30 even
  when one value lies 4 standard deviations out). Like exact, it has no seed dependence; it
  agrees with the exact distribution at n=9 and with 400,000 random resamples at n = 9..40
  within 0.5% of the interval width (tests). Random resamples would need far more than a
  study can afford: at n = 9..30, 2,700-7,000 resamples (about 50 in each tail) still moved
  the bounds by 5-11% of the width between seeds.
* **monte-carlo** (only when asked, ``grid=False``): resampled as ``scipy.stats.bootstrap``
  does (one index set shared by all groups of a batch), with enough resamples that each tail
  at the requested level holds about ``TAIL_RESAMPLES`` of them (``n_resamples`` is the
  minimum, ``MAX_RESAMPLES`` the cap). With ``tail_resamples=0`` and one group it equals
  scipy on the same random stream, which is how the BCa formulas here are tested.

BCa on a distribution of weighted atoms (exact or grid) uses weighted statistics: the bias
correction z0 from the weighted share of resample means below the observed mean (exact: ties
count half, as scipy's ``_percentile_of_score``; grid: the piecewise-linear CDF at the mean,
which lies between grid points), quantiles as a continuous weighted quantile (linear
interpolation between the cumulative-weight midpoints of the sorted atoms). The acceleration
comes from the jackknife, which does not depend on resampling.

Cost (``benchmarks/aggregate.py``, 10,000 results, 2 busy cores, all of the aggregation):
2,000 configurations x 5 cycles (exact) 5.0-7.0 s, 1,000 x 10 and 334 x 30 (grid) 5.3-5.5 s;
the target is 10 s. The bootstrap itself: 0.13 s for 16,000 intervals at n=5, 0.66 s for
8,000 at n=10 or 2,672 at n=30.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Literal

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
#: largest n whose exact bootstrap distribution is enumerated (C(15, 8) = 6435 atoms)
EXACT_MAX_N = 8
#: grid: evenly spaced points spanning the sample (the resample sum has n * GRID_POINTS + 1)
GRID_POINTS = 512
#: Monte Carlo: expected resamples in each tail at the requested (expanded) level
TAIL_RESAMPLES = 50
#: Monte Carlo: most resamples the tail rule asks for (an explicit n_resamples may exceed it)
MAX_RESAMPLES = 10_000
#: elements of the (rows, resamples) work arrays held at once; bounds memory per chunk
_CHUNK_ELEMENTS = 1_000_000
CIMethod = Literal["BCa", "percentile"]
Resampling = Literal["exact", "grid", "monte-carlo"]


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


def _weighted_quantile_rows(sorted_b: Any, cum_mid: Any, q: Any) -> Any:
    """Per-row continuous weighted quantile: ``np.interp(q, cum_mid[i], sorted_b[i])``.

    ``cum_mid`` holds the cumulative weight at the middle of each sorted atom; below the first
    midpoint the smallest atom is returned, above the last the largest (as np.interp clamps).
    """
    import numpy as np

    a = sorted_b.shape[1]
    k = (cum_mid <= q[:, None]).sum(axis=1) - 1  # last midpoint <= q; -1 when none
    lo = np.clip(k, 0, a - 1)
    hi = np.clip(k + 1, 0, a - 1)
    rows = np.arange(sorted_b.shape[0])
    p_lo, p_hi = cum_mid[rows, lo], cum_mid[rows, hi]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(hi > lo, (q - p_lo) / (p_hi - p_lo), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    a_lo, a_hi = sorted_b[rows, lo], sorted_b[rows, hi]
    return a_lo + frac * (a_hi - a_lo)


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


def resampling_plan(
    n: int,
    confidence: float,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    exact_max_n: int = EXACT_MAX_N,
    grid: bool = True,
    tail_resamples: int = TAIL_RESAMPLES,
    max_resamples: int = MAX_RESAMPLES,
) -> tuple[Resampling, int]:
    """How :func:`bootstrap_mean_ci` resamples n values at ``confidence``, and how many atoms.

    Exact for ``n <= exact_max_n`` (the count is C(2n-1, n)); else the grid (n *
    GRID_POINTS + 1 points); with ``grid=False`` Monte Carlo with
    ``max(n_resamples, min(max_resamples, ceil(tail_resamples / alpha)))`` resamples, alpha
    the probability in each tail. ``tail_resamples=0`` uses exactly ``n_resamples``.
    """
    if n <= max(exact_max_n, 1):
        return "exact", math.comb(2 * n - 1, n) if n > 0 else 1
    if grid:
        return "grid", n * GRID_POINTS + 1
    alpha = (1 - confidence) / 2
    b = n_resamples
    if tail_resamples > 0 and alpha > 0:
        b = max(n_resamples, min(max_resamples, math.ceil(tail_resamples / alpha)))
    return "monte-carlo", b


@lru_cache(maxsize=16)
def exact_atoms(n: int) -> tuple[Any, Any]:
    """All resamples of n values as count vectors, and their probabilities.

    Returns ``(counts, weights)``: ``counts`` has shape (C(2n-1, n), n), each row non-negative
    and summing to n; ``weights[k] = n!/prod(counts[k]!) / n^n`` (they sum to 1). Rows come
    from stars and bars: the n-1 bar positions among 2n-1 slots.
    """
    from itertools import combinations

    import numpy as np

    rows = []
    for bars in combinations(range(2 * n - 1), n - 1):
        edges = (-1, *bars, 2 * n - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(n)])
    fact = [math.factorial(i) for i in range(n + 1)]
    total = n**n
    weights = [fact[n] // math.prod(fact[c] for c in r) / total for r in rows]
    counts = np.array(rows, dtype=float).reshape(len(rows), n)
    w = np.array(weights, dtype=float)
    counts.flags.writeable = False
    w.flags.writeable = False
    return counts, w


def bca_probabilities(pct: Any, a_hat: Any, alpha: float, defined: Any = True
                      ) -> tuple[Any, Any, Any]:
    """BCa probabilities ``(q_lo, q_hi, bca_ok)`` from the share ``pct`` of resamples below
    the estimate and the acceleration ``a_hat`` (Efron & Tibshirani eq. 14.10, as scipy).

    Falls back to the percentile probabilities ``alpha``, ``1 - alpha`` where BCa is
    undefined (a non-finite z0 or acceleration) or ``defined`` is False.
    """
    import numpy as np
    from scipy.special import ndtr, ndtri

    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = ndtri(pct)
        z_lo, z_hi = ndtri(alpha), -ndtri(alpha)
        a1 = ndtr(z0 + (z0 + z_lo) / (1 - a_hat * (z0 + z_lo)))
        a2 = ndtr(z0 + (z0 + z_hi) / (1 - a_hat * (z0 + z_hi)))
    bca_ok = np.isfinite(a1) & np.isfinite(a2) & np.isfinite(z0) & defined
    return np.where(bca_ok, a1, alpha), np.where(bca_ok, a2, 1 - alpha), bca_ok


def jackknife_terms(theta_i: Any) -> tuple[Any, Any]:
    """``(sum U^3 / n^3, sum U^2 / n^2)`` of leave-one-out estimates ``theta_i`` (last axis),
    U = (n - 1) * (mean - theta_i): the pieces of scipy's acceleration, summed over samples
    when there are several, ``a = sum(num) / (6 * sum(den) ** 1.5)``."""
    n = theta_i.shape[-1]
    u = (n - 1) * (theta_i.mean(axis=-1, keepdims=True) - theta_i)
    return (u**3).sum(axis=-1) / n**3, (u**2).sum(axis=-1) / n**2


def _bca_quantiles(pct: Any, x: Any, alpha: float, n: int) -> tuple[Any, Any, Any]:
    """BCa probabilities ``(q_lo, q_hi, bca_ok)`` of the mean of each row of ``x``.

    Percentile probabilities where BCa is undefined (see :mod:`llem.results.stats`).
    """
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        if n > 1:  # leave-one-out means in closed form
            num, den = jackknife_terms((x.sum(axis=1, keepdims=True) - x) / (n - 1))
            a_hat = num / (6.0 * den**1.5)
        else:
            a_hat = np.full(x.shape[0], np.nan)
    return bca_probabilities(pct, a_hat, alpha, n >= 3)


def _cum_at(cum: Any, k: Any) -> Any:
    """Per row, the cumulative weight of the first ``k`` sorted atoms (0 when k == 0)."""
    import numpy as np

    rows = np.arange(cum.shape[0])
    return np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0.0)


def _exact_interval(x: Any, alpha: float) -> tuple[Any, Any, Any]:
    """BCa (or percentile) bounds on the exact bootstrap distribution, chunked over rows."""
    import numpy as np

    g, n = x.shape
    counts, w = exact_atoms(n)
    counts_t = np.ascontiguousarray(counts.T)
    ident = int(np.flatnonzero((counts == 1).all(axis=1))[0])
    low, high, ok = np.empty(g), np.empty(g), np.empty(g, dtype=bool)
    step = max(1, _CHUNK_ELEMENTS // len(w))
    for start in range(0, g, step):
        xs = x[start:start + step]
        rows = np.arange(xs.shape[0])[:, None]
        # n broadcast multiply-adds rather than ``xs @ counts.T``: the (rows, n) x (n, atoms)
        # product is too thin for BLAS, whose threads cost 10x the CPU on a busy host
        theta_b = xs[:, :1] * counts_t[0]
        for j in range(1, n):
            theta_b += xs[:, j:j + 1] * counts_t[j]
        theta_b /= n
        # theta from the same arithmetic as the atoms: the all-ones atom IS the sample, so a
        # rounding difference cannot turn its tie into "below"; equal means from duplicate
        # values are ties within the rounding bound of a sum of n terms
        theta = theta_b[:, ident:ident + 1]
        tol = 4 * n * np.finfo(float).eps * np.abs(xs).max(axis=1, keepdims=True)
        order = np.argsort(theta_b, axis=1)
        s = theta_b[rows, order]
        cum = np.cumsum(w[order], axis=1)
        # weighted share below theta, ties counting half, read off the sorted cumulative weight
        below = _cum_at(cum, (s < theta - tol).sum(axis=1))
        upto = _cum_at(cum, (s <= theta + tol).sum(axis=1))
        q_lo, q_hi, ok_s = _bca_quantiles((below + upto) / 2, xs, alpha, n)
        cum_mid = cum - w[order] / 2
        low[start:start + step] = _weighted_quantile_rows(s, cum_mid, q_lo)
        high[start:start + step] = _weighted_quantile_rows(s, cum_mid, q_hi)
        ok[start:start + step] = ok_s
    return low, high, ok


def _grid_pmf(xs: Any, points: int) -> tuple[Any, Any, Any, Any]:
    """The bootstrap distribution of the mean of each row, on a grid (module docstring).

    Returns ``(p, lo, h, s_obs)``: ``p[:, s]`` is the probability that the resample mean is
    ``lo + h * s / n`` (s = 0 .. n * points), and ``s_obs`` the observed mean's position on
    that scale (between grid points in general). A row of equal values has all its
    probability at s = 0.
    """
    import numpy as np
    from scipy import fft

    g, n = xs.shape
    lo = xs.min(axis=1)
    span = xs.max(axis=1) - lo
    h = np.where(span > 0, span / points, 1.0)
    u = np.clip((xs - lo[:, None]) / h[:, None], 0.0, points)
    k = np.minimum(np.floor(u), points - 1).astype(np.int64)
    f = u - k
    # one draw: value i at k_i with probability (1 - f_i) / n, at k_i + 1 with f_i / n
    at = (np.arange(g) * (points + 1))[:, None] + k
    size = g * (points + 1)
    one = (np.bincount(at.ravel(), ((1.0 - f) / n).ravel(), size)
           + np.bincount((at + 1).ravel(), (f / n).ravel(), size)).reshape(g, points + 1)
    # n draws: the n-fold convolution, as the n-th power of the transform (no wrap-around:
    # the transform is at least as long as the n * points + 1 sums)
    length = n * points + 1
    nfft = fft.next_fast_len(length, real=True)
    p = fft.irfft(fft.rfft(one, nfft, axis=1) ** n, nfft, axis=1)[:, :length]
    # round-off of the transform (~1e-17) where the probability is zero or below any level
    # asked for; a row of equal values is a point
    p[p < 1e-15] = 0.0
    p[span == 0] = 0.0
    p[span == 0, 0] = 1.0
    p /= p.sum(axis=1, keepdims=True)
    return p, lo, h, u.sum(axis=1)


def _grid_interval(x: Any, alpha: float, points: int = GRID_POINTS) -> tuple[Any, Any, Any]:
    """BCa (or percentile) bounds on the grid distribution of the mean, chunked over rows."""
    import numpy as np

    g, n = x.shape
    length = n * points + 1
    low, high, ok = np.empty(g), np.empty(g), np.empty(g, dtype=bool)
    step = max(1, _CHUNK_ELEMENTS // length)
    for start in range(0, g, step):
        xs = x[start:start + step]
        p, lo, h, s_obs = _grid_pmf(xs, points)
        rows = np.arange(xs.shape[0])
        cum = np.cumsum(p, axis=1)
        cum_mid = cum - p / 2
        # share below the observed mean: the piecewise-linear CDF through the midpoints (the
        # inverse of the quantile function below) between the grid points around it
        i0 = np.clip(np.floor(s_obs).astype(np.int64), 0, length - 2)
        frac = np.clip(s_obs - i0, 0.0, 1.0)
        pct = cum_mid[rows, i0] + frac * (cum_mid[rows, i0 + 1] - cum_mid[rows, i0])
        q_lo, q_hi, ok_s = _bca_quantiles(pct, xs, alpha, n)
        pos = np.broadcast_to(np.arange(length, dtype=float), p.shape)
        # not past the outermost points with probability (a row of equal values has one)
        first = np.argmax(p > 0, axis=1)
        last = length - 1 - np.argmax(p[:, ::-1] > 0, axis=1)
        s_lo = np.clip(_weighted_quantile_rows(pos, cum_mid, q_lo), first, last)
        s_hi = np.clip(_weighted_quantile_rows(pos, cum_mid, q_hi), first, last)
        low[start:start + step] = lo + h * s_lo / n
        high[start:start + step] = lo + h * s_hi / n
        ok[start:start + step] = ok_s
    return low, high, ok


def mean_distribution(x: Any, *, exact_max_n: int = EXACT_MAX_N
                      ) -> tuple[Any, Any, Resampling, int]:
    """The bootstrap distribution of the mean of the 1-D sample ``x``.

    Returns ``(atoms, weights, resampling, size)``: the possible resample means in ascending
    order with their probabilities (atoms of zero probability dropped), ``exact`` or
    ``grid``, and the size of the distribution (C(2n-1, n) atoms, or n * GRID_POINTS + 1).
    """
    import numpy as np

    x = np.asarray(x, dtype=float)
    n = x.size
    if n <= max(exact_max_n, 1):
        counts, w = exact_atoms(n)
        theta_b = x[0] * counts[:, 0]  # the arithmetic of _exact_interval
        for j in range(1, n):
            theta_b = theta_b + x[j] * counts[:, j]
        theta_b = theta_b / n
        order = np.argsort(theta_b, kind="stable")
        return theta_b[order], w[order], "exact", len(w)
    p, lo, h, _ = _grid_pmf(x[None, :], GRID_POINTS)
    atoms = lo[0] + h[0] * np.arange(p.shape[1]) / n
    keep = p[0] > 0
    return atoms[keep], p[0][keep], "grid", p.shape[1]


def _monte_carlo_interval(x: Any, alpha: float, n_resamples: int, rng: Any
                          ) -> tuple[Any, Any, Any]:
    """BCa (or percentile) bounds from ``n_resamples`` random resamples, chunked over rows.

    One set of resample indices serves every row (common random numbers): drawing them per
    row cost more than all the rest, and a row's interval then depends only on its values
    and the seed, not on which other rows share its batch. One row reproduces
    ``scipy.stats.bootstrap`` on the same stream (same draws, same arithmetic).
    """
    import numpy as np

    g, n = x.shape
    idx = rng.integers(0, n, (n_resamples, n))
    low, high, ok = np.empty(g), np.empty(g), np.empty(g, dtype=bool)
    step = max(1, _CHUNK_ELEMENTS // (n_resamples * n))
    for start in range(0, g, step):
        xs = x[start:start + step]
        theta_b = xs[:, idx].mean(axis=-1)
        # bias correction z0 (scipy's _percentile_of_score: mean of < and <=)
        t = xs.mean(axis=1)[:, None]
        pct = ((theta_b < t).sum(axis=1) + (theta_b <= t).sum(axis=1)) / (2 * n_resamples)
        q_lo, q_hi, ok_s = _bca_quantiles(pct, xs, alpha, n)
        theta_b.sort(axis=1)
        low[start:start + step] = _quantile_rows(theta_b, q_lo)
        high[start:start + step] = _quantile_rows(theta_b, q_hi)
        ok[start:start + step] = ok_s
    return low, high, ok


def bootstrap_mean_ci(
    samples: Any,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    rng: Any = None,
    exact_max_n: int = EXACT_MAX_N,
    grid: bool = True,
    tail_resamples: int = TAIL_RESAMPLES,
    max_resamples: int = MAX_RESAMPLES,
) -> tuple[Any, Any, list[CIMethod]]:
    """CI of the mean for each row of ``samples`` (shape ``(groups, n)``, no NaNs).

    Returns ``(low, high, methods)``. BCa where it is defined, else percentile (see
    :mod:`llem.results.stats`). Exact, grid or Monte Carlo, and how many resamples, as
    :func:`resampling_plan` says for these arguments; ``rng`` matters to Monte Carlo only.
    With Monte Carlo forced (``exact_max_n=0, grid=False, tail_resamples=0``),
    ``groups == 1`` and the same ``rng`` this equals
    ``scipy.stats.bootstrap(..., method='BCa')`` (same resample stream, same formulas).
    """
    import numpy as np

    x = np.asarray(samples, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    n = x.shape[1]
    alpha = (1 - confidence) / 2
    kind, b = resampling_plan(n, confidence, n_resamples=n_resamples, exact_max_n=exact_max_n,
                              grid=grid, tail_resamples=tail_resamples,
                              max_resamples=max_resamples)
    if kind == "exact":
        low, high, ok = _exact_interval(x, alpha)
    elif kind == "grid":
        low, high, ok = _grid_interval(x, alpha)
    else:
        low, high, ok = _monte_carlo_interval(x, alpha, b, np.random.default_rng(rng))
    methods: list[CIMethod] = ["BCa" if o else "percentile" for o in ok]
    return low, high, methods
