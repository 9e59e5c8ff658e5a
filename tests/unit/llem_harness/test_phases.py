"""The harness's phases on the embedded model, in-process: synthetic workload, window
anchors, FLOPs off, and what a shared session saves for the next run of the same model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llem_harness import runner
from llem_harness.phases.setup import Session
from llem_harness.workload import DatasetError, load_prompts, synthetic_prompts
from llem_schema.config import ExperimentConfig, WorkloadConfig
from llem_schema.runspec import RunSpec


def _spec(**over: Any) -> RunSpec:
    data: dict[str, Any] = {
        "model": "builtin:tiny-llama",
        "decoding": {"max_new_tokens": 4},
        "workload": {"dataset": "synthetic", "input_len": 12, "num_prompts": 4,
                     "batch_size": 2, "max_input_tokens": 16},
        "measurement": {"baseline_seconds": 0, "warmup_max_runs": 6, "warmup_min_runs": 1,
                        "warmup_cv_threshold": 0.9, "min_window_seconds": 0},
        "runtime": {"runtime": "local"},
    }
    for k, v in over.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    cfg = ExperimentConfig.model_validate(data)
    return RunSpec(experiment_id="e", run_id="r", config=cfg, config_hash=cfg.config_hash())


def test_synthetic_prompts_are_exact_seeded_and_skip_special_ids() -> None:
    w = WorkloadConfig(dataset="synthetic", input_len=50, num_prompts=3, seed=7)
    a = synthetic_prompts(w, (20, {0, 1, 2}))
    assert a == synthetic_prompts(w, (20, {0, 1, 2}))
    assert a != synthetic_prompts(w.model_copy(update={"seed": 8}), (20, {0, 1, 2}))
    assert [len(p) for p in a] == [50, 50, 50]
    assert not {t for p in a for t in p} & {0, 1, 2}
    with pytest.raises(DatasetError, match="vocabulary"):
        load_prompts(w)


def test_synthetic_longer_than_max_input_tokens_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="input_len"):
        WorkloadConfig(dataset="synthetic", input_len=200, max_input_tokens=128)


def test_synthetic_run_has_no_padding_and_anchored_windows(tmp_path: Path) -> None:
    before = time.time_ns()
    r = runner.run_experiment(_spec(), tmp_path)
    after = time.time_ns()
    passes = r.setup.measured_passes
    assert r.throughput.input_tokens == 4 * 12 * passes
    names = [w.name for w in r.windows]
    assert names == ["measured", "prefill"]
    for w in r.windows:
        assert before <= w.start_unix_ns < w.end_unix_ns <= after
        assert w.end_monotonic_s - w.start_monotonic_s == pytest.approx(w.duration_s)
        # the two clocks tell the same span (read next to each other)
        assert (w.end_unix_ns - w.start_unix_ns) / 1e9 == pytest.approx(w.duration_s, abs=0.01)
    assert r.windows[0].passes == passes and r.windows[0].duration_s == r.energy.duration_s


def test_flops_disabled_still_gives_a_result(tmp_path: Path) -> None:
    r = runner.run_experiment(_spec(measurement={"flops": False}), tmp_path)
    assert r.flops.total is None and r.flops.fallbacks == []
    assert r.flops.null_reasons["total"] == "disabled (measurement.flops: false)"


def test_session_reuses_model_warmup_and_flops_probes(tmp_path: Path, monkeypatch) -> None:
    session = Session()
    calls: list[int] = []
    from llem_harness.backends.pytorch import PyTorchBackend

    real = PyTorchBackend.flops_probes

    def counting(self: Any, batch: Any) -> Any:
        fns = real(self, batch)

        def first() -> Any:
            calls.append(1)
            return fns[0]()

        return [first, *fns[1:]]

    monkeypatch.setattr(PyTorchBackend, "flops_probes", counting)
    # a threshold no busy machine can miss: this test is about what is reused, not timing
    steady = {"measurement": {"warmup_cv_threshold": 50.0}}
    try:
        a = runner.run_experiment(_spec(**steady), tmp_path / "a", session)
        b = runner.run_experiment(_spec(**steady), tmp_path / "b", session)
    finally:
        session.close()
    assert not a.reused_model and b.reused_model
    assert a.warmup.converged and a.warmup.runs >= 3
    # the steady latency seen in run a is checked with one run, not re-learnt
    assert b.warmup.runs == 1 and b.warmup.converged
    assert len(calls) == 1 and a.flops.total == b.flops.total
    assert any("reused" in n for n in b.setup.notes)


class _ArrivalBackend:
    """A backend stub for run_pass alone: records when each batch was handed over."""

    def __init__(self, schedules: bool) -> None:
        self._schedules = schedules
        self.handed: list[float] = []

    def schedules_arrivals(self) -> bool:
        return self._schedules

    def generate(self, batch: Any) -> Any:
        from llem_harness.backends.base import BatchOutput

        self.handed.append(time.perf_counter())
        n = len(batch.requests)
        return BatchOutput(input_tokens=n, output_tokens=n, per_request_output_tokens=[1] * n,
                           e2e_s=0.0, ttft_s=[0.01] * n)


@pytest.mark.parametrize("schedules", [False, True])
def test_poisson_pass_waits_for_arrivals_once(schedules: bool) -> None:
    """A static batch waits for its last arrival and TTFT includes that queueing; an engine
    that submits at arrival times itself gets the batch at once and TTFT as it measured it
    (before: vLLM's requests waited for their arrival twice)."""
    from llem_harness.backends.base import Batch, Request
    from llem_harness.phases.windows import run_pass

    reqs = [Request(i, "p", 1) for i in range(3)]
    backend = _ArrivalBackend(schedules)
    t0 = time.perf_counter()
    _, ttft, _ = run_pass(backend, [Batch(requests=reqs, payload=None)],  # type: ignore[arg-type]
                          [0.0, 0.1, 0.3])
    waited = backend.handed[0] - t0
    if schedules:
        assert waited < 0.25 and ttft == pytest.approx([0.01] * 3)
    else:
        assert waited >= 0.29 and ttft[0] >= 0.3 and ttft[2] < ttft[0]
