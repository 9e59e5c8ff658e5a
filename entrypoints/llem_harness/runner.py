"""Run one experiment: load, baseline, warm up, measure, write ``result.json``.

Order of work (each step documented in docs/methodology.md):

1. load the model and tokenise the workload (outside every window);
2. idle baseline power over ``baseline_seconds`` with the model resident;
3. warm up until the latency CV of the last 3 runs is below the threshold (or a cap);
4. the measured window: the whole workload, repeated until the window spans at least
   ``min_window_seconds`` — energy and time come from the same :class:`EnergyWindow`;
5. a prefill-only window over the same batches, so prefill gets its own energy and decode
   is the remainder of the full window.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import statistics
import sys
import time
import traceback
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llem_harness import baseline_cache, environment, flops, latency
from llem_harness.backends import get_backend_class
from llem_harness.backends.base import (
    BackendNotInstalled,
    Batch,
    BatchOutput,
    InferenceBackend,
    ModelNotFound,
)
from llem_harness.energy.base import EnergySource, EnergySourceUnavailable, EnergyWindow
from llem_harness.energy.select import select_source
from llem_harness.sampler import PowerSampler
from llem_harness.workload import DatasetError, arrival_times, load_prompts
from llem_schema.atomic import atomic_write_json
from llem_schema.config import ExperimentConfig
from llem_schema.exit_codes import ExitCode
from llem_schema.result import (
    EnergyMetrics,
    ExperimentResult,
    FlopsMetrics,
    LatencyMetrics,
    MemoryMetrics,
    PhaseMetrics,
    PowerPhaseSummary,
    SetupInfo,
    ThroughputMetrics,
    WarmupInfo,
)
from llem_schema.runspec import EXPERIMENT_FILE, LOG_FILE, RESULT_FILE, TIMESERIES_FILE, RunSpec

log = logging.getLogger("llem_harness")

#: NVML's energy counter refreshes about every 100 ms: a window shorter than ten
#: refreshes carries a quantisation error above ~1%.
MIN_TRUSTED_WINDOW_S = 1.0


class _Terminated(Exception):
    """SIGTERM (docker stop, scancel): leave like Ctrl+C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def detect_device(spec: RunSpec) -> tuple[str, list[int]]:
    """('cuda', visible indices) when a GPU is usable, else ('cpu', [])."""
    try:
        import torch

        if torch.cuda.is_available():
            n = len(spec.gpus) or 1
            return "cuda", list(range(min(n, torch.cuda.device_count())))
    except ImportError:
        pass
    return "cpu", []


# -- measurement steps ------------------------------------------------------------------
def measure_baseline(
    source: EnergySource | None,
    sampler: PowerSampler | None,
    seconds: float,
    device_indices: list[int] | None = None,
) -> tuple[float | None, str | None, bool | None]:
    """Idle power (W, summed over the experiment's devices) with the model resident:
    (watts, None, cached?) or (None, reason, None). With ``LLEM_BASELINE_CACHE`` set, a
    fresh value for the same GPUs and power limits is reused (see baseline_cache)."""
    if seconds <= 0:
        return None, "baseline disabled (measurement.baseline_seconds: 0)", None
    if source is None:
        return None, "no energy source to measure idle power", None
    keys = baseline_cache.gpu_keys(device_indices) if device_indices else []
    cached = baseline_cache.load(keys)
    if cached is not None:
        log.info("baseline: %.1f W from cache %s", cached, baseline_cache.cache_dir())
        return cached, None, True
    if sampler:
        sampler.set_phase("baseline")
    with EnergyWindow(source, list(device_indices or [])) as win:
        time.sleep(seconds)
    assert win.reading is not None
    if sampler:
        sampler.set_phase("idle")
    watts = win.reading.mean_power_w
    baseline_cache.store(keys, watts, seconds)
    return watts, None, False


def warmup(
    backend: InferenceBackend, batches: list[Batch], cfg: ExperimentConfig
) -> WarmupInfo:
    """Run the first batch until latency is steady (CV of the last 3 < threshold)."""
    m = cfg.measurement
    times: list[float] = []
    cv = None
    converged = False
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


def _run_pass(
    backend: InferenceBackend, batches: list[Batch], arrivals: list[float] | None
) -> tuple[list[BatchOutput], list[float], list[float]]:
    """One pass over the workload. With arrivals (poisson traffic), a static batch starts
    when its last request has arrived; TTFT and end-to-end then include the queueing."""
    outs: list[BatchOutput] = []
    ttft: list[float] = []
    e2e: list[float] = []
    t_pass = time.perf_counter()
    for b in batches:
        arr = [arrivals[r.index] for r in b.requests] if arrivals else None
        if arr:
            wait = max(arr) - (time.perf_counter() - t_pass)
            if wait > 0:
                time.sleep(wait)
        start = time.perf_counter() - t_pass
        out = backend.generate(b)
        outs.append(out)
        done = time.perf_counter() - t_pass
        for j, _ in enumerate(b.requests):
            queued = (start - arr[j]) if arr else 0.0
            if out.ttft_s is not None:
                ttft.append(out.ttft_s[j] + queued)
            e2e.append(done - (arr[j] if arr else start))
    return outs, ttft, e2e


def _phase(
    tokens: int | None, time_s: float | None, energy_j: float | None, energy_reason: str | None
) -> PhaseMetrics:
    reasons: dict[str, str] = {}
    tps = tokens / time_s if tokens and time_s and time_s > 0 else None
    ept = energy_j / tokens if energy_j is not None and tokens else None
    power = energy_j / time_s if energy_j is not None and time_s else None
    for name, val in (
        ("tokens", tokens),
        ("time_s", time_s),
        ("energy_j", energy_j),
        ("tokens_per_s", tps),
        ("energy_per_token_j", ept),
        ("mean_power_w", power),
    ):
        if val is None:
            reasons[name] = energy_reason or "not measured (prefill split disabled)"
    return PhaseMetrics(
        tokens=tokens,
        time_s=time_s,
        energy_j=energy_j,
        tokens_per_s=tps,
        energy_per_token_j=ept,
        mean_power_w=power,
        null_reasons=reasons,
    )


def run_experiment(spec: RunSpec, run_dir: Path) -> ExperimentResult:
    cfg = spec.config
    started = datetime.now(timezone.utc)
    warnings: list[str] = []
    device, indices = detect_device(spec)
    log.info("device=%s indices=%s backend=%s model=%s", device, indices, cfg.backend, cfg.model)

    backend_cls = get_backend_class(cfg.backend)
    backend = backend_cls(cfg, device, indices)
    info = backend.load()
    log.info("loaded in %.2fs (%s params, dtype=%s)", info.load_time_s, info.num_parameters,
             info.dtype)
    prompts = load_prompts(cfg.workload)
    batches = backend.make_batches(prompts)
    arrivals = (
        arrival_times(cfg.workload, len(prompts))
        if cfg.workload.traffic.mode == "poisson"
        else None
    )

    source, energy_reason = select_source(cfg.measurement.energy_backend, device, indices)
    if energy_reason:
        log.info("energy: %s", energy_reason)
    sampler: PowerSampler | None = None
    if cfg.measurement.timeseries and device == "cuda":
        sampler = PowerSampler(indices, cfg.measurement.sample_interval_ms / 1000.0)
        if not sampler.active:
            warnings.append(f"power time series unavailable: {sampler.unavailable_reason}")
            sampler = None
    t_origin = time.monotonic()

    with ExitStack() as stack:
        if sampler:
            stack.enter_context(sampler)
        stack.callback(lambda: source.close() if source else None)

        baseline_w, baseline_reason, baseline_cached = measure_baseline(
            source, sampler, cfg.measurement.baseline_seconds, indices if device == "cuda" else []
        )

        if sampler:
            sampler.set_phase("warmup")
        warm = warmup(backend, batches, cfg)
        if cfg.measurement.warmup_max_runs and not warm.converged:
            warnings.append(
                f"warmup did not converge in {warm.runs} runs (CV {warm.final_cv}); "
                "raise measurement.warmup_max_runs"
            )

        # -- the measured window: whole workload, repeated to span min_window_seconds --
        backend.reset_peak_memory()
        if sampler:
            sampler.set_phase("decode")
        outs: list[BatchOutput] = []
        ttfts: list[float] = []
        e2es: list[float] = []
        passes = 0
        with EnergyWindow(source, indices) as full:
            t_start = time.perf_counter()
            while True:
                o, tt, ee = _run_pass(backend, batches, arrivals)
                outs += o
                ttfts += tt
                e2es += ee
                passes += 1
                if time.perf_counter() - t_start >= cfg.measurement.min_window_seconds:
                    break
            backend.synchronize()
        assert full.reading is not None
        peak_alloc, peak_reserved = backend.peak_memory()

        # -- prefill-only window over the same batches --
        prefill_passes = 0
        pre = None
        if cfg.measurement.prefill_split:
            if sampler:
                sampler.set_phase("prefill")
            with EnergyWindow(source, indices) as pre:
                t_start = time.perf_counter()
                while True:
                    for b in batches:
                        backend.prefill(b)
                    prefill_passes += 1
                    if time.perf_counter() - t_start >= cfg.measurement.min_window_seconds:
                        break
                backend.synchronize()
        if sampler:
            sampler.set_phase("idle")
            time.sleep(min(0.3, cfg.measurement.sample_interval_ms / 1000.0 * 2))

        # -- FLOPs: probes run here, after every energy window closed ------------------------
        fl_est, fl_why = None, []
        if cfg.measurement.flops:
            probes = getattr(backend, "flops_probes", None)
            fns = probes(batches[0]) if probes else []
            p_lens = [r.input_tokens for b in batches for r in b.requests] * passes
            o_lens = [n for o in outs for n in o.per_request_output_tokens]
            fl_est, fl_why = flops.best_estimate(fns, info.architecture, p_lens, o_lens)

    rd = full.reading
    in_tokens = sum(o.input_tokens for o in outs)
    out_tokens = sum(o.output_tokens for o in outs)
    n_requests = len(prompts) * passes
    if rd.duration_s < MIN_TRUSTED_WINDOW_S and source is not None:
        warnings.append(
            f"measured window {rd.duration_s:.2f}s is shorter than {MIN_TRUSTED_WINDOW_S}s "
            "(about ten energy-counter refreshes); raise measurement.min_window_seconds"
        )

    if device == "cuda" and cfg.backend == "pytorch" and not cfg.pytorch.compile:
        # Not an error (eager may be what is being studied), but users should not publish
        # numbers from a needlessly slow setting without knowing it.
        warnings.append(
            "pytorch: eager generate without static cache/compile; on an H100 the fast setting "
            "(pytorch.cache_implementation: static, pytorch.compile: true) was ~9x faster "
            "at batch 1 (benchmarks/results/h100-validation-run2)"
        )

    # -- energy --------------------------------------------------------------------------
    have_energy = source is not None
    total_j = rd.joules if have_energy else None
    reason = energy_reason or ""
    e_null = {} if have_energy else {"*": reason}
    trace_j = sampler.integrate(rd.start_monotonic, rd.end_monotonic) if sampler else None
    method_name = source.name if source else None
    if not have_energy and trace_j is not None:
        # No counter (pre-Volta, some vGPUs): integrate the sampled power instead, and say
        # so; never report 0 J for a GPU that simply lacks the counter.
        total_j, method_name = trace_j, "nvml-power-integration"
        have_energy = True
        warnings.append(f"energy from integrated power samples, not a counter ({reason})")
    per_device = getattr(source, "per_device", True) if source else False
    peak_w = mean_w = None
    phases: list[PowerPhaseSummary] = []
    if sampler:
        for phase, (n, mean, peak) in sampler.by_phase().items():
            phases.append(PowerPhaseSummary(phase=phase, samples=n, mean_w=mean, peak_w=peak))
        stats = sampler.by_phase().get("decode")
        if stats:
            mean_w, peak_w = stats[1], stats[2]
    energy_vals: dict[str, Any] = dict(
        total_j=total_j,
        baseline_power_w=baseline_w,
        adjusted_j=(total_j - baseline_w * rd.duration_s)
        if total_j is not None and baseline_w is not None
        else None,
        duration_s=rd.duration_s,
        per_output_token_j=total_j / out_tokens if total_j is not None and out_tokens else None,
        per_token_j=total_j / (in_tokens + out_tokens) if total_j is not None else None,
        per_request_j=total_j / n_requests if total_j is not None else None,
        mean_power_w=(total_j / rd.duration_s) if total_j is not None else mean_w,
        peak_power_w=peak_w,
        per_gpu_j=rd.per_device_j if have_energy and per_device else None,
        method=method_name,
        method_version=source.version() if source else None,
        gpu_indices=indices if have_energy and device == "cuda" else None,
        baseline_cached=baseline_cached,
        timeseries_j=trace_j,
        timeseries_power_method=sampler.power_method if sampler else None,
    )
    reasons: dict[str, str] = {}
    for k, v in energy_vals.items():
        if v is None:
            if k == "baseline_power_w" or (k == "adjusted_j" and have_energy):
                reasons[k] = baseline_reason or "no baseline"
            elif k == "peak_power_w":
                reasons[k] = "no power time series (needs NVML)"
            elif k == "method_version":
                reasons[k] = "source reports no version"
            elif k == "gpu_indices":
                reasons[k] = "not a GPU measurement"
            elif k == "baseline_cached":
                reasons[k] = baseline_reason or "no baseline"
            elif k in ("timeseries_j", "timeseries_power_method"):
                reasons[k] = "no power time series (needs NVML and measurement.timeseries)"
            elif k == "per_gpu_j" and source is not None and not per_device:
                reasons[k] = f"{source.name} reports only the sum over GPUs"
            else:
                reasons[k] = e_null.get("*", "not measured")
    energy = EnergyMetrics(null_reasons=reasons, **energy_vals)

    # -- prefill / decode split -------------------------------------------------------------
    if pre is not None and pre.reading is not None and prefill_passes:
        pr = pre.reading
        pass_in_tokens = sum(b.input_tokens for b in batches)
        pre_t_per_pass = pr.duration_s / prefill_passes
        pre_e_per_pass = pr.joules / prefill_passes if have_energy else None
        prefill = _phase(
            pass_in_tokens,
            pre_t_per_pass,
            pre_e_per_pass,
            energy_reason,
        )
        dec_time = rd.duration_s - passes * pre_t_per_pass
        dec_energy = (
            rd.joules - passes * pre_e_per_pass if pre_e_per_pass is not None else None
        )
        if dec_time <= 0:
            warnings.append("prefill-only window outlasted the full window; decode split invalid")
            dec_time, dec_energy = None, None
        decode = _phase(out_tokens, dec_time, dec_energy, energy_reason or "decode split invalid")
    else:
        prefill = _phase(None, None, None, "prefill split disabled")
        decode = _phase(None, None, None, "prefill split disabled")

    # -- latency / throughput -----------------------------------------------------------------
    itl_all = [x for o in outs for x in (o.itl_s or [])]
    lat = LatencyMetrics(
        ttft=latency.summarise(ttfts),
        itl=latency.summarise(itl_all),
        e2e=latency.summarise(e2es),
        null_reasons={
            k: "the backend exposed no per-token timestamps (e.g. beam search)"
            for k, v in (("ttft", ttfts), ("itl", itl_all), ("e2e", e2es))
            if not v
        },
    )
    wall = rd.duration_s
    rate = cfg.workload.traffic.rate if arrivals else None
    tput = ThroughputMetrics(
        num_requests=n_requests,
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        wall_time_s=wall,
        output_tokens_per_s=out_tokens / wall,
        total_tokens_per_s=(in_tokens + out_tokens) / wall,
        requests_per_s=n_requests / wall,
        requested_rate=rate,
        achieved_rate=(n_requests / wall) if arrivals else None,
        null_reasons={}
        if arrivals
        else {"requested_rate": "offline traffic", "achieved_rate": "offline traffic"},
    )

    # -- FLOPs ---------------------------------------------------------------------------------
    est = fl_est
    if est is not None:
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
        fl = FlopsMetrics(
            **vals,  # type: ignore[arg-type]
            fallbacks=fl_why,
            null_reasons={k: "no tokens of that kind" for k, v in vals.items() if v is None},
        )
    elif not cfg.measurement.flops:
        fl = FlopsMetrics.unavailable("disabled (measurement.flops: false)")
    else:
        fl = FlopsMetrics.unavailable("model exposes no parameter count", fallbacks=fl_why)

    mem = MemoryMetrics(
        device="cuda" if device == "cuda" else "cpu",
        peak_allocated_bytes=peak_alloc,
        peak_reserved_bytes=peak_reserved,
        model_bytes=info.model_bytes,
        host_peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        null_reasons={
            k: "device memory counters exist only on CUDA"
            for k, v in (("peak_allocated_bytes", peak_alloc), ("peak_reserved_bytes",
                                                                 peak_reserved))
            if v is None
        }
        | ({} if info.model_bytes is not None else {"model_bytes": "backend did not report"}),
    )

    ts_file = None
    if sampler and sampler.samples:
        sampler.write_parquet(run_dir / TIMESERIES_FILE, t_origin)
        ts_file = TIMESERIES_FILE

    compile_s = None
    if cfg.backend == "pytorch" and cfg.pytorch.compile and warm.first_run_s and warm.steady_run_s:
        compile_s = max(0.0, warm.first_run_s - warm.steady_run_s)
    backend.unload()

    env = environment.collect(device, indices, backend_cls.version(), spec.runtime)
    return ExperimentResult(
        experiment_id=spec.experiment_id,
        study_id=spec.study_id,
        run_id=spec.run_id,
        cycle=spec.cycle,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        config=cfg,
        config_hash=spec.config_hash,
        backend=cfg.backend,
        model=cfg.model,
        environment=env,
        energy=energy,
        prefill=prefill,
        decode=decode,
        latency=lat,
        throughput=tput,
        flops=fl,
        memory=mem,
        warmup=warm,
        setup=SetupInfo(
            load_time_s=info.load_time_s,
            compile_time_s=compile_s,
            num_parameters=info.num_parameters,
            dtype=info.dtype,
            attn_implementation=info.attn_implementation,
            device="cuda" if device == "cuda" else "cpu",
            device_indices=indices,
            measured_passes=passes,
            prefill_passes=prefill_passes,
            notes=info.notes,
        ),
        power_phases=phases,
        timeseries_file=ts_file,
        measurement_methodology={
            "energy_window": "one window over all measured passes; energy and time share it",
            "prefill": "separate prefill-only window over the same batches (logits_to_keep=1)",
            "decode": "full window minus passes x prefill-window energy/time",
            "flops": "first that works of: torch.profiler(with_flops) on one prefill forward + "
            "one decode step, extrapolated per token; calflops; architecture formula; 2*params",
            "baseline": "idle power with the model resident, before warmup",
            "warmup": f"until CV of last 3 runs < {cfg.measurement.warmup_cv_threshold}",
        },
        warnings=warnings,
    )


def _setup_logging(run_dir: Path) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    fh = logging.FileHandler(run_dir / LOG_FILE)
    fh.setFormatter(fmt)
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [fh, sh]
    root.setLevel(logging.INFO)
    for noisy in ("urllib3", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m llem_harness RUN_DIR", file=sys.stderr)
        return ExitCode.BAD_CONFIG
    run_dir = Path(argv[0])
    if not (run_dir / EXPERIMENT_FILE).is_file():
        print(f"llem_harness: {run_dir / EXPERIMENT_FILE} not found", file=sys.stderr)
        return ExitCode.BAD_CONFIG
    _setup_logging(run_dir)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        spec = RunSpec.model_validate_json((run_dir / EXPERIMENT_FILE).read_text("utf-8"))
    except ValidationError as exc:
        log.error("invalid %s: %s", EXPERIMENT_FILE, exc)
        return ExitCode.BAD_CONFIG
    code = ExitCode.OK
    try:
        result = run_experiment(spec, run_dir)
        atomic_write_json(run_dir / RESULT_FILE, result.model_dump(mode="json"))
        log.info(
            "done: %.1f tok/s, energy %s J",
            result.throughput.output_tokens_per_s or 0.0,
            result.energy.total_j,
        )
    except (KeyboardInterrupt, _Terminated):
        log.error("interrupted")
        code = ExitCode.INTERRUPTED
    except BackendNotInstalled as exc:
        log.error("%s", exc)
        code = ExitCode.BACKEND_NOT_INSTALLED
    except ModelNotFound as exc:
        log.error("%s", exc)
        code = ExitCode.MODEL_NOT_FOUND
    except EnergySourceUnavailable as exc:
        log.error("%s", exc)
        code = ExitCode.ENERGY_UNAVAILABLE
    except DatasetError as exc:
        log.error("%s", exc)
        code = ExitCode.BAD_CONFIG
    except BaseException as exc:
        log.error("%s", "".join(traceback.format_exception(exc)))
        code = ExitCode.OUT_OF_MEMORY if _is_oom(exc) else ExitCode.BACKEND_FAILURE
    if os.environ.get("LLEM_HARNESS_DEBUG"):
        log.info("exit code %d", int(code))
    return int(code)
