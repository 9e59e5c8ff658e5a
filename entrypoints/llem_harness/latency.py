"""Latency distributions (seconds) from raw observations."""

from __future__ import annotations

import math

from llem_schema.result import LatencyStats


def percentile(sorted_vals: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    pos = (len(sorted_vals) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def summarise(values: list[float] | None) -> LatencyStats | None:
    if not values:
        return None
    v = sorted(values)
    return LatencyStats(
        n=len(v),
        mean=sum(v) / len(v),
        p50=percentile(v, 50),
        p90=percentile(v, 90),
        p95=percentile(v, 95),
        p99=percentile(v, 99),
        min=v[0],
        max=v[-1],
    )
