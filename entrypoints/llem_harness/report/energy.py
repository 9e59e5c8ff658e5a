"""Energy of the measured window, and its split into prefill and decode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llem_harness.backends.base import BatchOutput
from llem_harness.phases.context import RunContext
from llem_schema.result import EnergyMetrics, PhaseMetrics

#: why each energy field may be null, where the reason is not the source's own
_FIXED_REASONS = {
    "peak_power_w": "no power time series (needs NVML)",
    "method_version": "source reports no version",
    "gpu_indices": "not a GPU measurement",
    "timeseries_j": "no power time series (needs NVML and measurement.timeseries)",
    "timeseries_power_method": "no power time series (needs NVML and measurement.timeseries)",
}


def total_joules(ctx: RunContext) -> tuple[float | None, str | None, float | None]:
    """(joules, method, trace joules). Without a counter (pre-Volta, some vGPUs) the
    sampled power is integrated instead, and a warning says so; never 0 J for a GPU that
    simply lacks the counter."""
    rd = ctx.measured.reading
    trace_j = ctx.sampler.integrate(rd.start_monotonic, rd.end_monotonic) if ctx.sampler else None
    if ctx.source is not None:
        return rd.joules, ctx.source.name, trace_j
    if trace_j is not None:
        ctx.warnings.append(
            f"energy from integrated power samples, not a counter ({ctx.energy_reason or ''})"
        )
        return trace_j, "nvml-power-integration", trace_j
    return None, None, None


def energy_metrics(ctx: RunContext, out_tokens: int, in_tokens: int, n_requests: int
                   ) -> EnergyMetrics:
    rd, src, base = ctx.measured.reading, ctx.source, ctx.baseline
    total_j, method, trace_j = total_joules(ctx)
    have = total_j is not None
    per_device = getattr(src, "per_device", True) if src else False
    decode = ctx.sampler.by_phase().get("decode") if ctx.sampler else None
    vals: dict[str, Any] = dict(
        total_j=total_j,
        baseline_power_w=base.watts,
        adjusted_j=total_j - base.watts * rd.duration_s if have and base.watts is not None
        else None,
        duration_s=rd.duration_s,
        per_output_token_j=total_j / out_tokens if have and out_tokens else None,
        per_token_j=total_j / (in_tokens + out_tokens) if have else None,
        per_request_j=total_j / n_requests if have else None,
        mean_power_w=total_j / rd.duration_s if have else (decode[1] if decode else None),
        peak_power_w=decode[2] if decode else None,
        per_gpu_j=rd.per_device_j if src is not None and per_device else None,
        method=method,
        method_version=src.version() if src else None,
        gpu_indices=ctx.indices if have and ctx.device == "cuda" else None,
        baseline_cached=base.cached,
        timeseries_j=trace_j,
        timeseries_power_method=ctx.sampler.power_method if ctx.sampler else None,
    )
    reasons = {k: _reason(ctx, k, have) for k, v in vals.items() if v is None}
    return EnergyMetrics(null_reasons=reasons, **vals)


def _reason(ctx: RunContext, key: str, have_energy: bool) -> str:
    if key in ("baseline_power_w", "baseline_cached") or (key == "adjusted_j" and have_energy):
        return ctx.baseline.reason or "no baseline"
    if key == "per_gpu_j" and ctx.source is not None:
        return f"{ctx.source.name} reports only the sum over GPUs"
    return _FIXED_REASONS.get(key, ctx.energy_reason or "not measured")


def phase_metrics(tokens: int | None, time_s: float | None, energy_j: float | None,
                  energy_reason: str | None) -> PhaseMetrics:
    vals = dict(
        tokens=tokens,
        time_s=time_s,
        energy_j=energy_j,
        tokens_per_s=tokens / time_s if tokens and time_s and time_s > 0 else None,
        energy_per_token_j=energy_j / tokens if energy_j is not None and tokens else None,
        mean_power_w=energy_j / time_s if energy_j is not None and time_s else None,
    )
    why = energy_reason or "not measured (prefill split disabled)"
    reasons = {k: why for k, v in vals.items() if v is None}
    if tokens == 0:  # e.g. max_new_tokens 1: prefill makes every token, decode none
        reasons.update({k: "no tokens in this phase" for k in ("tokens_per_s",
                                                               "energy_per_token_j")})
    return PhaseMetrics(null_reasons=reasons, **vals)


def decode_tokens(outputs: Iterable[BatchOutput]) -> int:
    """Tokens the decode phase produced: each request's output tokens but its first.

    The first token of a request comes out of the prefill forward (the prefill window
    measures exactly that forward, ``logits_to_keep=1``), so counting it again here would
    spread decode energy over tokens decode did not make. The FLOPs per decode token use the
    same count (llem_harness.flops: ``max(o - 1, 0)`` per request)."""
    return sum(max(n - 1, 0) for o in outputs for n in o.per_request_output_tokens)


def split(ctx: RunContext, dec_tokens: int, have_energy: bool) -> tuple[PhaseMetrics,
                                                                        PhaseMetrics]:
    """Prefill from its own window (per pass); decode is the measured window minus the
    measured passes' worth of prefill, per decode token (:func:`decode_tokens`)."""
    pre, m = ctx.prefill, ctx.measured
    if pre is None or not pre.passes:
        off = phase_metrics(None, None, None, "prefill split disabled")
        return off, off
    pr, rd = pre.reading, m.reading
    t_pass = pr.duration_s / pre.passes
    e_pass = pr.joules / pre.passes if have_energy else None
    prefill = phase_metrics(sum(b.input_tokens for b in ctx.batches), t_pass, e_pass,
                            ctx.energy_reason)
    dec_time: float | None = rd.duration_s - m.passes * t_pass
    dec_energy = rd.joules - m.passes * e_pass if e_pass is not None else None
    if dec_time is not None and dec_time <= 0:
        ctx.warnings.append("prefill-only window outlasted the full window; decode split invalid")
        dec_time, dec_energy = None, None
    decode = phase_metrics(dec_tokens, dec_time, dec_energy,
                           ctx.energy_reason or "decode split invalid")
    return prefill, decode
