"""llem's side of the alternating throughput comparison (benchmarks/gpu_validation.py).

Each request runs llem's real harness (:func:`llem_harness.runner.run_experiment`: baseline,
warm-up, measured window, prefill window, FLOPs) on ``builtin:llama-1.1b`` with llem's
default settings, a synthetic workload of ``batch`` prompts x 128 tokens and 128 new tokens,
and ``min_window_seconds = seconds``. One :class:`Session` per setting keeps the model
loaded between requests, as ``study.reuse_model`` does, so a request costs a warm-up
check, the two windows and nothing else.

    python llem_worker.py --serve --out DIR      stdin: {"batch": 32, "seconds": 5}

A request with ``"window_only": true`` (gpu_validation's ``--llem-window-only``) runs, after
the first full run of its setting and batch, only llem's measured window again on that run's
context: the same ``windows.measure`` with the instruments ``setup.open_instruments`` opens
(energy source and power sampler), so its throughput is the one a run reports, without the
~7 s of warm-up check, prefill window and FLOPs probe around it. That keeps the sides of a
round seconds apart, so a machine whose speed swings within tens of seconds cancels out of
the paired ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from llem_harness import runner
from llem_harness.phases import setup, windows
from llem_harness.phases.context import RunContext
from llem_harness.phases.setup import Session
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec

sys.path.insert(0, str(Path(__file__).resolve().parent / "references"))
from cpu_probe import CpuProbe, pinned_launcher  # no llem code: the references use it too

#: setting -> (backend, that backend's section); everything else is llem's default
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("pytorch", {}),
    "fast": ("pytorch", {"cache_implementation": "static", "compile": True}),
    # two engines share the GPU during the alternating comparison: 0.35 of it each
    "vllm": ("vllm", {"gpu_memory_utilization": 0.35}),
    "vllm-eager": ("vllm", {"gpu_memory_utilization": 0.35, "enforce_eager": True}),
}
#: diagnostic variants: a setting name + "-nosampler" runs without the 100 ms power trace,
#: + "-noflops" without the FLOPs probe (the only torch.profiler use in the harness),
#: + "-noclock" without the per-token clock (the stopping criterion that records one CUDA
#: event per step for TTFT/ITL), so its cost per step shows on its own
NO_SAMPLER = "-nosampler"
NO_FLOPS = "-noflops"
NO_CLOCK = "-noclock"


def base_setting(setting: str) -> str:
    """The setting without its diagnostic suffixes (variants share one loaded model)."""
    return setting.removesuffix(NO_CLOCK).removesuffix(NO_FLOPS).removesuffix(NO_SAMPLER)


@contextmanager
def clock_off(setting: str) -> Iterator[None]:
    """With "-noclock", the PyTorch backend's generate runs without its step clock."""
    if NO_CLOCK not in setting:
        yield
        return
    from llem_harness.backends import pytorch

    kept = pytorch._StepClock
    pytorch._StepClock = lambda *a, **k: None  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        pytorch._StepClock = kept  # type: ignore[misc]


#: diagnostic: the independent bare loop (references/bare_generate.py, its own code) run in
#: this process on the model llem's "default" setting loaded: tells the harness's own cost
#: per step (llem vs this) apart from anything about the process or its core (this vs the
#: bare process)
INPROC_BARE = "inproc-bare"
#: diagnostic: the same bare loop on a model it builds itself (bare_generate.build_model) in
#: this process: llem's process without llem's model object
INPROC_OWN = "inproc-own"
_INPROC: dict[str, Any] = {}

#: the CPU probe of each measured window (where the launching thread's time went)
_PROBES: list[dict[str, Any]] = []
_measure = windows.measure


def _probed_measure(ctx: Any) -> None:
    # pinned here, after the instruments opened: the sampler keeps the worker's cores
    with pinned_launcher(), CpuProbe() as probe:
        _measure(ctx)
    _PROBES.append(probe.result)


windows.measure = _probed_measure

#: the context of the last full run (setup.load's), kept per (setting, batch) for
#: window-only requests
_LOADED: list[RunContext] = []
_CONTEXTS: dict[tuple[str, int], RunContext] = {}
_load = setup.load


def _kept_load(*args: Any, **kwargs: Any) -> RunContext:
    ctx = _load(*args, **kwargs)
    _LOADED[:] = [ctx]
    return ctx


setup.load = _kept_load


def config(batch: int, seconds: float, setting: str, model: str = "builtin:llama-1.1b",
           traffic: dict[str, Any] | None = None) -> ExperimentConfig:
    backend, section = SETTINGS[base_setting(setting)]
    measurement: dict[str, Any] = {"min_window_seconds": seconds, "baseline_seconds": 5}
    if NO_SAMPLER in setting:
        measurement["timeseries"] = False
    if NO_FLOPS in setting:
        measurement["flops"] = False
    return ExperimentConfig.model_validate({
        "name": f"b{batch}-{setting}" + ("-poisson" if traffic else ""),
        "model": model,
        "backend": backend,
        backend: section,
        "decoding": {"max_new_tokens": 128},
        "workload": {"dataset": "synthetic", "input_len": 128, "num_prompts": batch,
                     "batch_size": batch, "traffic": traffic or {}},
        "measurement": measurement,
        "runtime": {"runtime": "local"},
    })


def inproc_bare(req: dict[str, Any], sessions: dict[str, Session]) -> dict[str, Any]:
    """The bare reference loop on llem's loaded model, in llem's process."""
    from bare_generate import Worker as BareWorker  # references/: no llem code

    backend = sessions["default"].backend if "default" in sessions else None
    if backend is None:
        raise RuntimeError(f"{INPROC_BARE} needs a 'default' segment first (the model)")
    worker = _INPROC.setdefault("w", BareWorker(backend.model, 128, 128))
    return worker.segment(int(req["batch"]), float(req["seconds"])) | {"setting": INPROC_BARE}


def inproc_own(req: dict[str, Any]) -> dict[str, Any]:
    """The bare reference loop and its own model, in llem's process."""
    from bare_generate import Worker as BareWorker
    from bare_generate import build_model

    if "own" not in _INPROC:
        _INPROC["own"] = BareWorker(build_model(None, "eager"), 128, 128)
    return _INPROC["own"].segment(int(req["batch"]), float(req["seconds"])) | {
        "setting": INPROC_OWN}


def window_only(ctx: RunContext, setting: str) -> dict[str, Any]:
    """llem's measured window once more on a finished run's context, with its instruments
    opened again (they close with each run)."""
    with ExitStack() as stack:
        setup.open_instruments(ctx, stack)
        windows.measure(ctx)
    m = ctx.measured
    assert m is not None
    tokens = sum(o.output_tokens for o in m.outputs)
    return {"batch": ctx.cfg.workload.batch_size, "setting": setting, "window_only": True,
            "tok_per_s": tokens / m.reading.duration_s, "seconds": m.reading.duration_s,
            "energy_j": m.reading.joules, "j_per_token": m.reading.joules / tokens,
            "passes": m.passes, "cpu": _PROBES[-1] if _PROBES else None}


def segment(req: dict[str, Any], sessions: dict[str, Session], out: Path, n: int
            ) -> dict[str, Any]:
    setting = req.get("setting", "default")
    if setting == INPROC_BARE:
        return inproc_bare(req, sessions)
    if setting == INPROC_OWN:
        return inproc_own(req)
    kept = _CONTEXTS.get((setting, int(req["batch"])))
    if req.get("window_only") and kept is not None:
        return window_only(kept, setting)
    cfg = config(int(req["batch"]), float(req["seconds"]), setting,
                 req.get("model", "builtin:llama-1.1b"), req.get("traffic"))
    run_dir = out / f"{n:03d}-{cfg.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(experiment_id=cfg.name, run_id=run_dir.name, config=cfg,
                   config_hash=cfg.config_hash(), gpus=[0])
    key = base_setting(setting) + ("-poisson" if req.get("traffic") else "")
    res = runner.run_experiment(spec, run_dir, sessions.setdefault(key, Session()))
    _CONTEXTS[(setting, cfg.workload.batch_size)] = _LOADED[0]
    (run_dir / "result.json").write_text(res.model_dump_json(indent=1))
    measured = next(w for w in res.windows if w.name == "measured")
    return {
        "batch": cfg.workload.batch_size, "setting": setting,
        "tok_per_s": res.throughput.output_tokens_per_s,
        "seconds": res.energy.duration_s, "energy_j": res.energy.total_j,
        "j_per_token": res.energy.per_output_token_j, "method": res.energy.method,
        "gpu_util_mean_pct": measured.gpu_util_mean_pct,
        "warmup_runs": res.warmup.runs, "compile_time_s": res.setup.compile_time_s,
        "load_time_s": res.setup.load_time_s, "engine": res.environment.packages.get(
            "vllm") or res.environment.packages.get("transformers"),
        "ttft_p50_s": res.latency.ttft.p50 if res.latency.ttft else None,
        "itl_p50_s": res.latency.itl.p50 if res.latency.itl else None,
        "prefill_j_per_token": res.prefill.energy_per_token_j,
        "decode_j_per_token": res.decode.energy_per_token_j,
        "flops_method": res.flops.method, "achieved_rate": res.throughput.achieved_rate,
        "reused_model": res.reused_model, "notes": res.setup.notes[-1:],
        "warnings": [w for w in res.warnings if not w.startswith("pytorch: eager")],
        "cpu": _PROBES[-1] if _PROBES else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    os.environ.setdefault("LLEM_BASELINE_CACHE", str(out / "baseline-cache"))
    sessions: dict[str, Session] = {}
    print(json.dumps({"ready": True}), flush=True)
    for n, line in enumerate(sys.stdin):
        req = json.loads(line)
        if req.get("quit"):
            break
        with clock_off(req.get("setting", "default")):
            reply = segment(req, sessions, out, n)
        print(json.dumps(reply), flush=True)
    for s in sessions.values():
        s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
