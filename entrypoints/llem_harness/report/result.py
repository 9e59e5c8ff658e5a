"""Assemble :class:`ExperimentResult` from a finished :class:`RunContext`."""

from __future__ import annotations

from datetime import datetime, timezone

from llem_harness import environment
from llem_harness.carbon import carbon_metrics
from llem_harness.phases.context import RunContext
from llem_harness.report import energy, metrics
from llem_schema.result import ExperimentResult, PowerPhaseSummary, SetupInfo, WindowRecord
from llem_schema.runspec import TIMESERIES_FILE

#: NVML's energy counter refreshes about every 100 ms: a window shorter than ten
#: refreshes carries a quantisation error above ~1%.
MIN_TRUSTED_WINDOW_S = 1.0

METHODOLOGY = {
    "energy_window": "one window over all measured passes; energy and time share it",
    "prefill": "separate prefill-only window over the same batches (logits_to_keep=1)",
    "decode": "full window minus passes x prefill-window energy/time, per decode token "
    "(each request's output tokens but its first, which prefill produces)",
    "flops": "first that works of: torch FlopCounterMode on one prefill forward + "
    "one decode step, extrapolated per token; calflops; architecture formula; 2*params. "
    "Engine backends (vLLM, TensorRT-LLM, model outside the harness process): analytic "
    "formula over config.json and the safetensors parameter count",
    "baseline": "idle power with the model resident, before warmup",
}


def _windows(ctx: RunContext) -> list[WindowRecord]:
    out = []
    for name, rd, passes in ctx.windows:
        util = temp0 = temp1 = None
        throttled: list[str] = []
        if ctx.sampler:
            util = ctx.sampler.util_mean(rd.start_monotonic, rd.end_monotonic)
            temp0, temp1, throttled = ctx.sampler.window_state(rd.start_monotonic,
                                                               rd.end_monotonic)
        if throttled and name != "baseline":
            ctx.warnings.append(f"GPU throttled inside the {name} window ({', '.join(throttled)})"
                                ": its speed and energy are those of a slowed GPU")
        out.append(WindowRecord(
            name=name, start_unix_ns=rd.start_unix_ns, end_unix_ns=rd.end_unix_ns,
            start_monotonic_s=rd.start_monotonic, end_monotonic_s=rd.end_monotonic,
            duration_s=rd.duration_s, energy_j=rd.joules if ctx.source is not None else None,
            passes=passes, gpu_util_mean_pct=util, temp_start_c=temp0, temp_end_c=temp1,
            throttled=throttled,
        ))
    return out


def _power_phases(ctx: RunContext) -> list[PowerPhaseSummary]:
    if not ctx.sampler:
        return []
    util = ctx.sampler.util_by_phase()
    return [PowerPhaseSummary(phase=p, samples=n, mean_w=mean, peak_w=peak,
                              mean_util_pct=util.get(p))
            for p, (n, mean, peak) in ctx.sampler.by_phase().items()]


def _warn(ctx: RunContext) -> None:
    cfg, rd = ctx.cfg, ctx.measured.reading
    if rd.duration_s < MIN_TRUSTED_WINDOW_S and ctx.source is not None:
        ctx.warnings.append(
            f"measured window {rd.duration_s:.2f}s is shorter than {MIN_TRUSTED_WINDOW_S}s "
            "(about ten energy-counter refreshes); raise measurement.min_window_seconds"
        )
    if ctx.device == "cuda" and cfg.backend == "pytorch" and not cfg.pytorch.compile:
        # Not an error (eager may be what is being studied), but users should not publish
        # numbers from a needlessly slow setting without knowing it.
        ctx.warnings.append(
            "pytorch: eager generate without static cache/compile; on an H100 the fast setting "
            "(pytorch.cache_implementation: static, pytorch.compile: true) was ~9x faster "
            "at batch 1 (benchmarks/results/h100-validation-run2)"
        )


def _setup(ctx: RunContext) -> SetupInfo:
    cfg, warm, info = ctx.cfg, ctx.warm, ctx.info
    compile_s = None
    if cfg.backend == "pytorch" and cfg.pytorch.compile and warm.first_run_s \
            and warm.steady_run_s and warm.runs > 1:
        compile_s = max(0.0, warm.first_run_s - warm.steady_run_s)
    return SetupInfo(
        load_time_s=info.load_time_s, compile_time_s=compile_s,
        num_parameters=info.num_parameters, dtype=info.dtype,
        attn_implementation=info.attn_implementation,
        device="cuda" if ctx.device == "cuda" else "cpu", device_indices=ctx.indices,
        measured_passes=ctx.measured.passes,
        prefill_passes=ctx.prefill.passes if ctx.prefill else 0, notes=info.notes,
    )


def build(ctx: RunContext) -> ExperimentResult:
    """Everything the phases measured, as the contract's result."""
    m, spec, cfg = ctx.measured, ctx.spec, ctx.cfg
    _warn(ctx)
    in_tok = sum(o.input_tokens for o in m.outputs)
    out_tok = sum(o.output_tokens for o in m.outputs)
    n_req = len(ctx.prompts) * m.passes
    en = energy.energy_metrics(ctx, out_tok, in_tok, n_req)
    dec_tok = energy.decode_tokens(m.outputs)
    prefill, decode = energy.split(ctx, dec_tok, ctx.source is not None)
    ts_file = None
    if ctx.sampler and ctx.sampler.samples:
        ctx.sampler.write_parquet(ctx.run_dir / TIMESERIES_FILE, ctx.t_origin)
        ts_file = TIMESERIES_FILE
    env = environment.collect(ctx.device, ctx.indices, ctx.backend_cls.version(),
                              spec.runtime)
    return ExperimentResult(
        experiment_id=spec.experiment_id, study_id=spec.study_id, run_id=spec.run_id,
        cycle=spec.cycle, started_at=ctx.started, finished_at=datetime.now(timezone.utc),
        config=cfg, config_hash=spec.config_hash, config_provenance=spec.provenance,
        backend=cfg.backend, model=cfg.model,
        environment=env, energy=en, prefill=prefill, decode=decode,
        latency=metrics.latency_metrics(ctx),
        throughput=metrics.throughput_metrics(ctx, in_tok, out_tok, n_req),
        flops=metrics.flops_metrics(ctx, in_tok, out_tok, n_req),
        carbon=carbon_metrics(cfg.measurement, en, out_tok), host_energy=ctx.host_energy,
        memory=metrics.memory_metrics(ctx), warmup=ctx.warm, setup=_setup(ctx),
        power_phases=_power_phases(ctx), windows=_windows(ctx), timeseries_file=ts_file,
        reused_model=ctx.reused_model,
        measurement_methodology=METHODOLOGY | {
            "warmup": f"until CV of last 3 runs < {cfg.measurement.warmup_cv_threshold}"},
        warnings=ctx.warnings,
    )
