"""Decode energy per token counts only the tokens decode produced (issue 16 B): each
request's first token comes from the prefill forward, which the prefill window measures."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from llem.config import loader as config_loader
from llem.study.rundir import read_result
from llem.study.runner import run_study
from llem_harness import flops
from llem_harness.backends.base import Batch, BatchOutput, Request
from llem_harness.energy.base import WindowReading
from llem_harness.phases.context import Measured, Prefill
from llem_harness.report import energy
from tests.conftest import quick_overrides


def _output(per_request: list[int]) -> BatchOutput:
    return BatchOutput(input_tokens=10, output_tokens=sum(per_request),
                       per_request_output_tokens=per_request, e2e_s=0.1)


def _ctx(outputs: list[BatchOutput], passes: int) -> SimpleNamespace:
    """The parts of a RunContext that the energy split reads: a 100 J / 10 s measured window
    of ``passes`` passes, and a prefill window of 2 passes costing 5 J / 0.5 s each."""
    batch = Batch(requests=[Request(0, "a", 5), Request(1, "b", 5)])
    measured = Measured(reading=WindowReading(joules=100.0, duration_s=10.0), outputs=outputs,
                        ttft_s=[], e2e_s=[], passes=passes, peak_allocated=None,
                        peak_reserved=None)
    prefill = Prefill(reading=WindowReading(joules=10.0, duration_s=1.0), passes=2)
    return SimpleNamespace(prefill=prefill, measured=measured, batches=[batch],
                           energy_reason=None, warnings=[])


def test_decode_tokens_leave_out_each_requests_first_token() -> None:
    outputs = [_output([8, 8]), _output([5, 1]), _output([0, 3])]
    # 7 + 7 + 4 + 0 + 0 + 2: a request with no output has no decode token (never -1)
    assert energy.decode_tokens(outputs) == 20


def test_decode_energy_per_token_divides_by_decode_tokens() -> None:
    outputs = [_output([8, 8]), _output([8, 8])]  # two passes of a batch of two
    ctx = _ctx(outputs, passes=2)
    prefill, decode = energy.split(ctx, energy.decode_tokens(outputs), have_energy=True)
    assert decode.tokens == 28  # 32 output tokens minus 4 first tokens
    assert decode.energy_j == pytest.approx(100.0 - 2 * 5.0)
    assert decode.energy_per_token_j == pytest.approx(90.0 / 28)
    assert decode.tokens_per_s == pytest.approx(28 / (10.0 - 2 * 0.5))
    assert prefill.tokens == 10 and prefill.energy_per_token_j == pytest.approx(0.5)


def test_one_token_per_request_leaves_decode_without_tokens_and_says_so() -> None:
    outputs = [_output([1, 1])]
    _, decode = energy.split(_ctx(outputs, passes=1), energy.decode_tokens(outputs), True)
    assert decode.tokens == 0 and decode.energy_per_token_j is None
    assert decode.null_reasons["energy_per_token_j"] == "no tokens in this phase"


def test_decode_tokens_match_the_flops_convention() -> None:
    """The FLOPs per decode token and the decode J/token must count the same tokens, or
    J/FLOP comparisons across phases are off by the first tokens."""
    lengths = [8, 3, 1, 0, 12]
    est = flops.estimate({"num_parameters": 10}, [4] * len(lengths), lengths)
    assert est is not None and est.method == "params"
    assert est.decode / (2 * 10) == energy.decode_tokens([_output(lengths)])


def test_methodology_doc_states_the_decode_token_definition() -> None:
    doc = " ".join((Path(__file__).resolve().parents[4] / "docs" / "methodology.md")
                   .read_text().split())
    assert "divides by the output tokens" not in doc
    assert "decode tokens" in doc and "first output token" in doc


def test_built_result_divides_decode_energy_by_decode_tokens(tmp_path: Path) -> None:
    """The embedded model through the real harness: result.build passes the decode count."""
    loaded = config_loader.load(None, quick_overrides())
    assert run_study(loaded, results_dir=tmp_path, quiet=True) == 0
    (found,) = tmp_path.rglob("result.json")
    r = read_result(found)
    tp = r.throughput
    assert tp.output_tokens and tp.num_requests
    assert r.decode.tokens == tp.output_tokens - tp.num_requests  # ignore_eos: all >= 1
    assert "first" in r.measurement_methodology["decode"]
