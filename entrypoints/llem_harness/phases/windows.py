"""Phases 4 and 5: the measured window (the whole workload, repeated to span
``min_window_seconds``) and the prefill-only window over the same batches. Energy and time
of each come from one :class:`EnergyWindow`, so they can never describe different spans."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

from llem_harness.backends.base import Batch, BatchOutput, InferenceBackend
from llem_harness.energy.base import EnergyWindow
from llem_harness.energy.host import HostEnergy
from llem_harness.phases.context import Measured, Prefill, RunContext


def run_pass(
    backend: InferenceBackend, batches: list[Batch], arrivals: list[float] | None
) -> tuple[list[BatchOutput], list[float], list[float]]:
    """One pass over the workload. With arrivals (poisson traffic), a static batch starts
    when its last request has arrived; TTFT and end-to-end then include the queueing. A
    backend that submits requests at their arrival times itself gets the batch at once."""
    if arrivals and backend.schedules_arrivals():
        arrivals = None
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


@contextmanager
def quiet_heap() -> Iterator[None]:
    """Collect once, then freeze the harness's own objects (config, results, samples) out
    of the collector's reach for the window: the engine's garbage is still collected as
    usual, but a full collection no longer walks the harness's heap, which a bare loop
    does not carry."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def measure(ctx: RunContext) -> None:
    """Phase 4: whole passes until the window spans ``min_window_seconds``."""
    backend, min_s = ctx.backend, ctx.cfg.measurement.min_window_seconds
    backend.reset_peak_memory()
    ctx.phase("decode")
    outs: list[BatchOutput] = []
    ttfts: list[float] = []
    e2es: list[float] = []
    passes = 0
    host = HostEnergy()
    with quiet_heap(), EnergyWindow(ctx.source, ctx.indices) as win:
        host.begin()
        t_start = time.perf_counter()
        while True:
            o, tt, ee = run_pass(backend, ctx.batches, ctx.arrivals)
            outs += o
            ttfts += tt
            e2es += ee
            passes += 1
            if time.perf_counter() - t_start >= min_s:
                break
        backend.synchronize()
        ctx.host_energy = host.end()
    assert win.reading is not None
    alloc, reserved = backend.peak_memory()
    ctx.measured = Measured(win.reading, outs, ttfts, e2es, passes, alloc, reserved)
    ctx.windows.append(("measured", win.reading, passes))


def prefill(ctx: RunContext) -> None:
    """Phase 5: prefill-only passes; decode is the measured window minus these."""
    if not ctx.cfg.measurement.prefill_split:
        return
    backend, min_s = ctx.backend, ctx.cfg.measurement.min_window_seconds
    ctx.phase("prefill")
    passes = 0
    with EnergyWindow(ctx.source, ctx.indices) as win:
        t_start = time.perf_counter()
        while True:
            for b in ctx.batches:
                backend.prefill(b)
            passes += 1
            if time.perf_counter() - t_start >= min_s:
                break
        backend.synchronize()
    assert win.reading is not None
    ctx.prefill = Prefill(win.reading, passes)
    ctx.windows.append(("prefill", win.reading, passes))


def settle(ctx: RunContext) -> None:
    """Label the tail of the trace idle and let the sampler take its last samples."""
    if ctx.sampler:
        ctx.sampler.set_phase("idle")
        time.sleep(min(0.3, ctx.cfg.measurement.sample_interval_ms / 1000.0 * 2))
