"""What llem's own code adds to a launch-bound decode loop: on a CPU (no GPU needed), or on
the GPU with ``--device cuda``.

On the H100 the default PyTorch path's decode step is bound by one CPU core (~13 ms a step
at batch 8, GPU ~30% busy), and llem's measured window has run 2-5% below a bare
``generate`` loop in another process at batch 8 (benchmarks/results/h100-session12). This
script asks, where it costs nothing to ask, whether llem's code path is the cause: in one
process, on one model, alternating round by round in mirrored order,

* ``bare``: ``model.generate`` with the bare reference loop's arguments
  (references/bare_generate.py), nothing else;
* ``llem-generate``: llem's ``PyTorchBackend.generate`` on the same batch (its generate
  arguments, the per-token step clock, token counting);
* ``llem-window``: llem's whole measured window (``windows.measure`` with the instruments
  ``setup.open_instruments`` opens), timed by the window itself, per pass;
* ``bare-own-model`` (``--own-model``): the bare call on a model the reference builds itself
  (references/bare_generate.build_model) in this process: if it differs from ``bare``, the
  model object matters; if not, what separates llem's worker from the bare process is the
  process.

The model is a 22-layer Llama of tiny width, so each step is Python and dispatch work as on
the GPU, not arithmetic. Paired ratios over ``bare`` with seeded bootstrap intervals
(gpu_validation.median_ci95). What it cannot see: anything CUDA-only (events, NVML, the
CUDA context) -- those need benchmarks/h100_calls.sh's diagnostic call.

    python benchmarks/window_cost_cpu.py [--rounds 30] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "references"))  # bare_generate, for --own-model

#: launch-bound on a CPU: the 1.1B shape's 22 layers at a width where arithmetic is cheap
SHAPE = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=22,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
SHAPE_NAME = "cpu-launch-bound"
#: the model and prompt length on the GPU: what gpu_validation's parity calls run
GPU_MODEL, GPU_INPUT_LEN = "builtin:llama-1.1b", 128
#: CUDA runtime/driver calls counted per decode step, by what they do
RUNTIME_CALLS = {
    "launches": ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx"),
    "event_records": ("cudaEventRecord", "cudaEventRecordWithFlags"),
    "copies": ("cudaMemcpyAsync", "cudaMemcpy", "cudaMemsetAsync"),
    "syncs": ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize"),
}


def bare_generate(model: Any, ids: Any, new_tokens: int) -> None:
    """The bare reference loop's call (references/bare_generate.py's arguments)."""
    import torch

    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                       max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=False, pad_token_id=0)


def loaded_context(batch: int, new_tokens: int, device: str = "cpu") -> Any:
    """One full llem run (baseline, warm-up, windows, FLOPs) on the launch-bound shape (on
    CUDA: builtin:llama-1.1b at 128 input tokens); returns its context, whose backend stays
    loaded."""
    from llem_harness import runner
    from llem_harness.backends import builtin_models
    from llem_harness.phases import setup
    from llem_harness.phases.setup import Session
    from llem_schema.config import ExperimentConfig
    from llem_schema.runspec import RunSpec

    builtin_models.SHAPES[SHAPE_NAME] = SHAPE
    cuda = device == "cuda"
    model, input_len = (GPU_MODEL, GPU_INPUT_LEN) if cuda else (f"builtin:{SHAPE_NAME}", 32)
    kept: list[Any] = []
    load = setup.load

    def keep(*args: Any, **kwargs: Any) -> Any:
        kept.append(load(*args, **kwargs))
        return kept[-1]

    setup.load = keep
    cfg = ExperimentConfig.model_validate({
        "name": f"window-cost-b{batch}", "model": model, "backend": "pytorch",
        "decoding": {"max_new_tokens": new_tokens},
        "workload": {"dataset": "synthetic", "input_len": input_len, "num_prompts": batch,
                     "batch_size": batch},
        "measurement": {"min_window_seconds": 0.05, "baseline_seconds": 2 if cuda else 0.5},
        "runtime": {"runtime": "local"}})
    spec = RunSpec(experiment_id=cfg.name, run_id="r", config=cfg,
                   config_hash=cfg.config_hash(), gpus=[0] if cuda else [])
    try:
        with tempfile.TemporaryDirectory() as d:
            runner.run_experiment(spec, Path(d), Session())
    finally:
        setup.load = load
    return kept[0]


def own_model(ctx: Any, device: str) -> Any:
    """The bare reference's own model (references/bare_generate.build_model: its config,
    its seed) of llem's shape, in llem's dtype, beside llem's in this process: whether the
    model object matters apart from the process it lives in."""
    from bare_generate import SHAPE_1B, build_model

    cuda = device == "cuda"
    model = build_model(None, "eager", "cuda:0" if cuda else "cpu", SHAPE_1B if cuda else SHAPE)
    return model.to(ctx.backend.model.dtype)


def sides(ctx: Any, new_tokens: int, own: Any = None) -> dict[str, Callable[[], float]]:
    """Each side runs once and returns its seconds per pass of the batch; with ``own`` (a
    model of the same shape), also the bare call on it ("bare-own-model")."""

    from llem_harness.phases import setup, windows

    backend, batch = ctx.backend, ctx.batches[0]
    ids = batch.payload["input_ids"]

    def timed(fn: Callable[[], Any]) -> float:
        t = time.perf_counter()
        fn()
        backend.synchronize()
        return time.perf_counter() - t

    def bare() -> float:
        return timed(lambda: bare_generate(backend.model, ids, new_tokens))

    def window() -> float:
        with ExitStack() as stack:
            setup.open_instruments(ctx, stack)
            windows.measure(ctx)
        return ctx.measured.reading.duration_s / ctx.measured.passes

    fns = {"bare": bare, "llem-generate": lambda: timed(lambda: backend.generate(batch)),
           "llem-window": window}
    if own is not None:
        fns["bare-own-model"] = lambda: timed(lambda: bare_generate(own, ids, new_tokens))
    return fns


def op_counts(fn: Callable[[], Any], new_tokens: int, cuda: bool) -> dict[str, float]:
    """One profiled call of ``fn``: aten ops (every level), and on CUDA the GPU's own
    activities ("kernels": kernels, and the copies and memsets it runs) and runtime calls by
    kind, each per decode step (the call's count / ``new_tokens``). Counted from
    the profiler's raw kineto events: building its Python event tree for the ~700k events
    of a 128-token call took ~100 s a call on the H100 (session 18), the raw list ~2 s."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        fn()
    counts = {"aten_ops": 0, "kernels": 0, **{k: 0 for k in RUNTIME_CALLS}}
    for ev in prof.profiler.kineto_results.events():
        name = ev.name()
        if ev.device_type() == DeviceType.CUDA:
            counts["kernels"] += 1
        elif name.startswith("aten::"):
            counts["aten_ops"] += 1
        else:
            for kind, names in RUNTIME_CALLS.items():
                if name in names:
                    counts[kind] += 1
    return {k: v / new_tokens for k, v in counts.items()}


def run(rounds: int, batch: int, new_tokens: int, device: str = "cpu",
        count_ops: bool = False, with_own_model: bool = False) -> dict[str, Any]:
    import torch
    from gpu_validation import median_ci95

    if device == "cpu":
        torch.set_num_threads(1)
    ctx = loaded_context(batch, new_tokens, device)
    fns = sides(ctx, new_tokens, own_model(ctx, device) if with_own_model else None)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for r in range(rounds):
        order = list(fns) if r % 2 else list(reversed(fns))
        for k in order:
            times[k].append(fns[k]())
    out: dict[str, Any] = {"device": device, "batch": batch, "new_tokens": new_tokens,
                           "rounds": rounds, "times_s": times,
                           "median_s": {k: statistics.median(v) for k, v in times.items()}}
    tokens = batch * new_tokens
    out["tok_per_s"] = {k: tokens / v for k, v in out["median_s"].items()}
    for k in (k for k in fns if k != "bare"):
        # time over bare's (above 1: slower), kept for the committed results that use it;
        # and throughput over bare's, the direction gpu_validation's ratios read
        pairs = [a / b for a, b in zip(times[k], times["bare"], strict=True)]
        out[f"{k}_over_bare"] = statistics.median(pairs)
        out[f"{k}_over_bare_ci95"] = median_ci95(pairs)
        speed = [1 / p for p in pairs]
        out[f"{k}_tok_per_s_over_bare"] = statistics.median(speed)
        out[f"{k}_tok_per_s_over_bare_ci95"] = median_ci95(speed)
    if count_ops:  # the window's per-step work is llem-generate's: its extra is per pass
        t = time.perf_counter()
        out["ops_per_step"] = {k: op_counts(fns[k], new_tokens, device == "cuda")
                               for k in fns if k != "llem-window"}
        out["count_ops_s"] = time.perf_counter() - t
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches", help="several batch sizes, one JSON line each (e.g. 8,1)")
    ap.add_argument("--new-tokens", type=int, help="default: 48 on the CPU, 128 on CUDA")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--count-ops", action="store_true",
                    help="also count ops, kernels and runtime calls per decode step")
    ap.add_argument("--own-model", action="store_true",
                    help="a fourth side: the bare call on the reference's own model")
    args = ap.parse_args()
    new = args.new_tokens or (128 if args.device == "cuda" else 48)
    batches = [int(b) for b in args.batches.split(",")] if args.batches else [args.batch]
    for b in batches:
        print(json.dumps(run(args.rounds, b, new, args.device, args.count_ops,
                             args.own_model)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
