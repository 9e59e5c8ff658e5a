"""Phase 2: idle power with the model resident, before any warm-up heats the GPU."""

from __future__ import annotations

import logging
import time

from llem_harness import baseline_cache
from llem_harness.energy.base import EnergySource, EnergyWindow
from llem_harness.phases.context import Baseline, RunContext
from llem_harness.sampler import PowerSampler

log = logging.getLogger("llem_harness")


def measure_baseline(
    source: EnergySource | None,
    sampler: PowerSampler | None,
    seconds: float,
    device_indices: list[int] | None = None,
) -> Baseline:
    """Idle power (W, summed over the experiment's devices). With ``LLEM_BASELINE_CACHE``
    set, a fresh value for the same GPUs and power limits is reused (see baseline_cache)."""
    if seconds <= 0:
        return Baseline(None, "baseline disabled (measurement.baseline_seconds: 0)", None)
    if source is None:
        return Baseline(None, "no energy source to measure idle power", None)
    keys = baseline_cache.gpu_keys(device_indices) if device_indices else []
    cached = baseline_cache.load(keys)
    if cached is not None:
        log.info("baseline: %.1f W from cache %s", cached, baseline_cache.cache_dir())
        return Baseline(cached, None, True)
    if sampler:
        sampler.set_phase("baseline")
    with EnergyWindow(source, list(device_indices or [])) as win:
        time.sleep(seconds)
    assert win.reading is not None
    if sampler:
        sampler.set_phase("idle")
    watts = win.reading.mean_power_w
    baseline_cache.store(keys, watts, seconds)
    return Baseline(watts, None, False, win.reading)


def run(ctx: RunContext) -> None:
    ctx.baseline = measure_baseline(
        ctx.source, ctx.sampler, ctx.cfg.measurement.baseline_seconds, ctx.gpu_indices
    )
    if ctx.baseline.reading is not None:
        ctx.windows.append(("baseline", ctx.baseline.reading, 0))
