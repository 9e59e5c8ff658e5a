"""Bootstrap CIs of the mean for many groups at once: scipy's BCa math vectorised with numpy,
with Hesterberg's small-sample expansion (see :mod:`llem.results.stats` for why)."""

from __future__ import annotations

import math
from typing import Any, Literal

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
CIMethod = Literal["BCa", "percentile"]


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
