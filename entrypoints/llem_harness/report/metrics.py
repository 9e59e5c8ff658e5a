"""Latency, throughput, FLOPs and memory of the measured window."""

from __future__ import annotations

import resource

from llem_harness import latency
from llem_harness.phases.context import RunContext
from llem_schema.result import FlopsMetrics, LatencyMetrics, MemoryMetrics, ThroughputMetrics


def latency_metrics(ctx: RunContext) -> LatencyMetrics:
    m = ctx.measured
    itl = [x for o in m.outputs for x in (o.itl_s or [])]
    series = (("ttft", m.ttft_s), ("itl", itl), ("e2e", m.e2e_s))
    return LatencyMetrics(
        ttft=latency.summarise(m.ttft_s),
        itl=latency.summarise(itl),
        e2e=latency.summarise(m.e2e_s),
        null_reasons={
            k: "the backend exposed no per-token timestamps (e.g. beam search)"
            for k, v in series
            if not v
        },
    )


def throughput_metrics(ctx: RunContext, in_tokens: int, out_tokens: int, n_requests: int
                       ) -> ThroughputMetrics:
    wall = ctx.measured.reading.duration_s
    poisson = ctx.arrivals is not None
    return ThroughputMetrics(
        num_requests=n_requests,
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        wall_time_s=wall,
        output_tokens_per_s=out_tokens / wall,
        total_tokens_per_s=(in_tokens + out_tokens) / wall,
        requests_per_s=n_requests / wall,
        requested_rate=ctx.cfg.workload.traffic.rate if poisson else None,
        achieved_rate=n_requests / wall if poisson else None,
        null_reasons={} if poisson
        else {"requested_rate": "offline traffic", "achieved_rate": "offline traffic"},
    )


def flops_metrics(ctx: RunContext, in_tokens: int, out_tokens: int, n_requests: int
                  ) -> FlopsMetrics:
    est, why = ctx.flops
    if est is None:
        if not ctx.cfg.measurement.flops:
            return FlopsMetrics.unavailable("disabled (measurement.flops: false)")
        return FlopsMetrics.unavailable(
            "model exposes no parameter count and its config no transformer shape",
            fallbacks=why)
    dec_toks = max(out_tokens - n_requests, 0)
    vals = dict(
        total=est.total,
        per_output_token=est.total / out_tokens if out_tokens else None,
        prefill=est.prefill,
        decode=est.decode,
        method=est.method,
        per_input_token_prefill=est.prefill / in_tokens if in_tokens else None,
        per_token_decode=est.decode / dec_toks if dec_toks else None,
    )
    return FlopsMetrics(
        **vals,  # type: ignore[arg-type]
        fallbacks=why,
        null_reasons={k: "no tokens of that kind" for k, v in vals.items() if v is None},
    )


def _device_memory_reason(ctx: RunContext) -> str:
    """Why the backend gave no peak device memory."""
    if ctx.device != "cuda":
        return "device memory counters exist only on CUDA"
    return getattr(ctx.backend, "memory_null_reason", None) or \
        f"the {ctx.cfg.backend} backend reports no device memory counters"


def memory_metrics(ctx: RunContext) -> MemoryMetrics:
    m, model_bytes = ctx.measured, ctx.info.model_bytes
    reason = _device_memory_reason(ctx)
    reasons = {
        k: reason
        for k, v in (("peak_allocated_bytes", m.peak_allocated),
                     ("peak_reserved_bytes", m.peak_reserved))
        if v is None
    }
    if model_bytes is None:
        reasons["model_bytes"] = "backend did not report"
    return MemoryMetrics(
        device="cuda" if ctx.device == "cuda" else "cpu",
        peak_allocated_bytes=m.peak_allocated,
        peak_reserved_bytes=m.peak_reserved,
        model_bytes=model_bytes,
        host_peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        null_reasons=reasons,
    )
