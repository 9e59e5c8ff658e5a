"""Phase 6: FLOPs, probed after every energy window has closed (a profiler in a window
would slow what it measures). Probes are cached per batch shape for a reused model."""

from __future__ import annotations

from typing import Any

from llem_harness import flops
from llem_harness.phases.context import RunContext
from llem_harness.phases.warmup import batch_shape


def _cached(fn: Any, cache: dict[Any, Any], key: Any) -> Any:
    def probe() -> Any:
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    probe.__name__ = getattr(fn, "__name__", "probe")
    return probe


def run(ctx: RunContext, probe_cache: dict[Any, Any]) -> None:
    if not ctx.cfg.measurement.flops or ctx.measured is None:
        return
    probes = getattr(ctx.backend, "flops_probes", None)
    shape = batch_shape(ctx.batches[0])
    fns = [_cached(fn, probe_cache, (shape, i))
           for i, fn in enumerate(probes(ctx.batches[0]) if probes else [])]
    m = ctx.measured
    p_lens = [r.input_tokens for b in ctx.batches for r in b.requests] * m.passes
    o_lens = [n for o in m.outputs for n in o.per_request_output_tokens]
    why = [] if probes else [
        f"flop_counter, calflops: the {ctx.cfg.backend} engine runs the model outside the "
        "harness process (no forward here to count); formula from the model's config"
    ]
    ctx.flops = flops.best_estimate(fns, ctx.info.architecture, p_lens, o_lens, why=why)
