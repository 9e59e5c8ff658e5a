from __future__ import annotations

import itertools
import statistics

import pytest

from llem_harness.backends.base import Request
from llem_harness.backends.engine_common import (
    group_requests,
    latencies_from_token_times,
    poisson_arrivals,
)
from llem_schema.config import WorkloadConfig

REQS = [Request(index=i, prompt=str(i), input_tokens=n) for i, n in enumerate([5, 1, 9, 3, 7])]


def test_static_sorted_dynamic_grouping():
    static = group_requests(REQS, WorkloadConfig(batch_size=2))
    assert [[r.index for r in b] for b in static] == [[0, 1], [2, 3], [4]]
    srt = group_requests(REQS, WorkloadConfig(batch_size=2, batching="sorted"))
    assert [[r.input_tokens for r in b] for b in srt] == [[1, 3], [5, 7], [9]]
    dyn = group_requests(REQS, WorkloadConfig(batching="dynamic", token_budget=9))
    assert [[r.input_tokens for r in b] for b in dyn] == [[1, 3, 5], [7], [9]]


def test_poisson_arrivals_are_seeded_and_have_the_rate():
    a = poisson_arrivals(2000, rate=10.0, seed=1)
    assert a == poisson_arrivals(2000, rate=10.0, seed=1)
    assert a != poisson_arrivals(2000, rate=10.0, seed=2)
    assert a[0] == 0.0 and all(x <= y for x, y in itertools.pairwise(a))
    gaps = [y - x for x, y in itertools.pairwise(a)]
    assert statistics.mean(gaps) == pytest.approx(0.1, rel=0.1)
    with pytest.raises(ValueError):
        poisson_arrivals(3, rate=0.0, seed=0)


def test_latencies_from_token_times():
    ttft, gaps = latencies_from_token_times(1.0, [1.5, 1.7, 2.0])
    assert ttft == pytest.approx(0.5)
    assert gaps == pytest.approx([0.2, 0.3])
    assert latencies_from_token_times(1.0, []) == (None, [])
