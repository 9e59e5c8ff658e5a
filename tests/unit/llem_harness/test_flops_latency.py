from __future__ import annotations

import numpy as np
import pytest

from llem_harness import flops, latency


def test_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(0)
    vals = list(rng.lognormal(size=101))
    s = latency.summarise(vals)
    assert s is not None and s.n == 101
    for q, got in ((50, s.p50), (90, s.p90), (99, s.p99)):
        assert got == pytest.approx(float(np.percentile(vals, q)))
    assert latency.summarise([]) is None


def test_architecture_flops_match_hand_count() -> None:
    arch = dict(num_parameters=1000, embedding_parameters=200, num_hidden_layers=2,
                hidden_size=8)
    est = flops.estimate(arch, prompt_lengths=[3], output_lengths=[2])
    assert est is not None and est.method == "architecture"
    # prefill: 2*800*3 + 2*2*8*(3*4/2) ; decode (1 step at context 4): 2*800 + 2*2*8*4
    assert est.prefill == 2 * 800 * 3 + 2 * 2 * 8 * 6
    assert est.decode == 2 * 800 + 2 * 2 * 8 * 4


def test_params_fallback_and_unknown() -> None:
    est = flops.estimate({"num_parameters": 10}, [4], [3])
    assert est is not None and est.method == "params" and est.total == 2 * 10 * (4 + 2)
    assert flops.estimate({}, [4], [3]) is None
