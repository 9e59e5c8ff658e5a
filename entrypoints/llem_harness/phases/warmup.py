"""Phase 3: warm up until latency is steady, so the window measures the steady state."""

from __future__ import annotations

import statistics
import time

from llem_harness.backends.base import Batch, InferenceBackend
from llem_harness.phases.context import RunContext
from llem_schema.config import ExperimentConfig
from llem_schema.result import WarmupInfo


def warmup(
    backend: InferenceBackend,
    batches: list[Batch],
    cfg: ExperimentConfig,
    steady_before: float | None = None,
) -> WarmupInfo:
    """Run the first batch until latency is steady (CV of the last 3 < threshold).

    ``steady_before``: the steady latency this process already reached for the same batch
    shape (a reused model). What warm-up removes (compilation, autotuning, allocator
    growth, cold caches) happened then and stays done, so one run re-primes the GPU clocks
    and the window follows. Its distance from the earlier steady latency is recorded as
    ``final_cv``: on a CPU-bound eager decode the machine itself drifts 10-20% between
    minutes (benchmarks/results/h100-session4), which more warm-up runs cannot remove —
    the study's cycles are what average it out.
    """
    m = cfg.measurement
    times: list[float] = []
    cv = None
    converged = False
    if steady_before and m.warmup_max_runs:
        t0 = time.perf_counter()
        backend.generate(batches[0])
        t = time.perf_counter() - t0
        return WarmupInfo(runs=1, converged=True, final_cv=abs(t - steady_before) / steady_before,
                          first_run_s=t, steady_run_s=steady_before)
    for i in range(m.warmup_max_runs):
        t0 = time.perf_counter()
        backend.generate(batches[0])
        times.append(time.perf_counter() - t0)
        if len(times) >= 3:
            last = times[-3:]
            mean = statistics.fmean(last)
            cv = statistics.pstdev(last) / mean if mean > 0 else 0.0
            if cv < m.warmup_cv_threshold and i + 1 >= m.warmup_min_runs:
                converged = True
                break
    steady = statistics.median(times[-3:]) if len(times) >= 2 else None
    return WarmupInfo(
        runs=len(times),
        converged=converged,
        final_cv=cv,
        first_run_s=times[0] if times else None,
        steady_run_s=steady,
    )


def run(ctx: RunContext, steady: dict[tuple[int, ...], float]) -> None:
    """``steady``: per batch shape, the steady latency reached earlier in this process."""
    ctx.phase("warmup")
    shape = batch_shape(ctx.batches[0])
    before = steady.get(shape)
    ctx.warm = warmup(ctx.backend, ctx.batches, ctx.cfg, before)
    if ctx.warm.steady_run_s and not before:  # learnt once per shape, even at the cap
        steady[shape] = ctx.warm.steady_run_s
    drift = ctx.warm.final_cv if before else None
    if drift is not None and drift > ctx.cfg.measurement.warmup_cv_threshold:
        ctx.warnings.append(
            f"warmup: reused model, one run {100 * drift:.0f}% away from this shape's earlier "
            "steady latency (machine drift; cycles average it out)"
        )
    if ctx.cfg.measurement.warmup_max_runs and not ctx.warm.converged:
        threshold = ctx.cfg.measurement.warmup_cv_threshold
        ctx.warnings.append(
            f"warmup did not converge in {ctx.warm.runs} runs (latency CV "
            f"{_pct(ctx.warm.final_cv)}, threshold {_pct(threshold)}); "
            "raise measurement.warmup_max_runs"
        )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def batch_shape(batch: Batch) -> tuple[int, ...]:
    """Requests and their input lengths: what a warm-up's steady latency depends on."""
    return (len(batch.requests), *(r.input_tokens for r in batch.requests))
