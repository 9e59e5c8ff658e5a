"""GPU validation of the measurement core (run on the H100; see docs/methodology.md).

For builtin:llama-1.1b at batch 1, 8, 32, 128 (128 input / 128 output tokens) it runs the
real harness (``runner.run_experiment``) and, over exactly the harness's windows:

* an independent NVML counter reader in a separate process (benchmarks/nvml_reader.py),
* every other energy source (zeus, nvml, codecarbon) side by side,
* the 100 ms power trace integrated over the window (``energy.timeseries_j``),

then a bare ``model.generate`` loop with the same settings for the throughput overhead, and
the ``fast`` setting (static cache + torch.compile + lean decode loop) at batch 1.
Ratios are computed within this one run. Usage:

    python benchmarks/gpu_validation.py --out DIR [--batches 1,8,32,128] [--window 6]
    # one model sharded over two GPUs (device_map auto): energy summed and kept per GPU
    python benchmarks/gpu_validation.py --out DIR --gpus 0,1 --batches 8,32 --skip-fast
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from llem_harness import runner
from llem_harness.backends.pytorch import PyTorchBackend
from llem_harness.energy.base import EnergySource
from llem_harness.energy.select import source_class
from llem_harness.workload import load_prompts
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec

HERE = Path(__file__).resolve().parent


class ExternalReader:
    """Talks to nvml_reader.py in its own process."""

    def __init__(self, nvml_indices: list[int]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "nvml_reader.py"), *map(str, nvml_indices)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def read(self) -> list[int]:
        self.proc.stdin.write("r\n")
        self.proc.stdin.flush()
        parts = self.proc.stdout.readline().split()
        return [int(x) for x in parts[1:]]

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=10)


class TeeSource(EnergySource):
    """The harness's own source, with extra readers opened just outside its window:
    begin extras (slowest first), then primary; end primary, then extras in reverse."""

    def __init__(self, primary: EnergySource, extras: dict[str, EnergySource],
                 external: ExternalReader, phase_of: Any) -> None:
        self.primary, self.extras, self.external = primary, extras, external
        self.name = primary.name
        self.per_device = getattr(primary, "per_device", True)
        self.phase_of = phase_of
        self.windows: list[dict[str, Any]] = []
        self._ext0: list[int] = []
        self.n_devices = getattr(primary, "n_devices", None)

    @classmethod
    def available(cls, device_indices: list[int]) -> tuple[bool, str]:
        return True, ""

    def version(self) -> str | None:
        return self.primary.version()

    def begin(self) -> None:
        self._cur: dict[str, Any] = {"phase": self.phase_of(), "errors": {}}
        for name, src in self.extras.items():
            try:
                src.begin()
            except Exception as exc:
                self._cur["errors"][name] = f"{type(exc).__name__}: {exc}"
        self._ext0 = self.external.read()
        self.primary.begin()
        self._cur["t0"] = time.monotonic()

    def end(self) -> list[float]:
        cur = self._cur
        cur["t1"] = time.monotonic()
        vals = self.primary.end()
        ext1 = self.external.read()
        cur["primary_j"] = sum(vals)
        pairs = zip(self._ext0, ext1, strict=True)
        cur["external_per_gpu_j"] = [(b - a) / 1000.0 for a, b in pairs]
        cur["external_nvml_j"] = sum(cur["external_per_gpu_j"])
        cur["primary_per_gpu_j"] = list(vals)
        for name, src in reversed(list(self.extras.items())):
            if name in cur["errors"]:
                continue
            try:
                cur[f"{name}_j"] = sum(src.end())
            except Exception as exc:
                cur["errors"][name] = f"{type(exc).__name__}: {exc}"
        self.windows.append(cur)
        return vals

    def close(self) -> None:
        self.primary.close()


def pct(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return 100.0 * (a - b) / b


def make_cfg(batch: int, window: float, fast: bool, prompts_file: str,
             gpus: list[int] | None = None) -> ExperimentConfig:
    py: dict[str, Any] = {}
    if fast:
        py = {"cache_implementation": "static", "compile": True, "compile_mode": "reduce-overhead"}
    gpus = gpus or [0]
    if len(gpus) > 1:
        py["device_map"] = "auto"  # shard the layers over the listed GPUs
    shard = f"-{len(gpus)}gpus" if len(gpus) > 1 else ""
    return ExperimentConfig.model_validate({
        "name": f"val-b{batch}{'-fast' if fast else ''}{shard}",
        "model": "builtin:llama-1.1b",
        "pytorch": py,
        "decoding": {"max_new_tokens": 128, "ignore_eos": True},
        "workload": {"dataset": prompts_file, "num_prompts": batch, "batch_size": batch,
                     "max_input_tokens": 128},
        "measurement": {"baseline_seconds": 5, "min_window_seconds": window,
                        "warmup_max_runs": 8 if not fast else 12, "warmup_min_runs": 2},
        "runtime": {"runtime": "local", "gpus": gpus},
    })


def bare_generate_tps(cfg: ExperimentConfig, seconds: float) -> dict[str, Any]:
    """Plain ``model.generate`` loop with the same settings: no streamer, no sampler, no
    energy source; the denominator of the instrumentation-overhead ratio."""
    import torch

    b = PyTorchBackend(cfg, "cuda", [0])
    b.load()
    batches = b.make_batches(load_prompts(cfg.workload))
    kw = dict(b._gen_kwargs)

    def one() -> int:
        n = 0
        for bt in batches:
            if b._lean:
                n += b._generate_lean(bt).output_tokens
            else:
                with torch.inference_mode():
                    out = b.model.generate(**bt.payload, **kw)
                n += (out.shape[1] - bt.payload["input_ids"].shape[1]) * out.shape[0]
        return n

    for _ in range(3):
        one()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    toks = 0
    while time.perf_counter() - t0 < seconds:
        toks += one()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    b.unload()
    return {"tokens": toks, "seconds": dt, "tok_per_s": toks / dt}


def overhead_ab(cfg: ExperimentConfig, rounds: int, seconds_each: float) -> dict[str, Any]:
    """Instrumentation overhead measured A/B on one loaded model, alternating segments:

    A (bare): ``model.generate`` without streamer, no sampler, no energy window;
    B (instrumented): ``backend.generate`` (step-clock streamer) inside an EnergyWindow of
    the auto-selected source, with the 100 ms power sampler thread running.

    Alternation cancels the drift (clocks, temperature) that separate windows suffer."""
    import statistics

    import torch

    from llem_harness.energy.base import EnergyWindow
    from llem_harness.energy.select import select_source
    from llem_harness.sampler import PowerSampler

    b = PyTorchBackend(cfg, "cuda", [0])
    b.load()
    batches = b.make_batches(load_prompts(cfg.workload))
    kw = dict(b._gen_kwargs)
    src, _ = select_source("auto", "cuda", [0])

    def bare_pass() -> int:
        n = 0
        for bt in batches:
            with torch.inference_mode():
                out = b.model.generate(**bt.payload, **kw)
            n += (out.shape[1] - bt.payload["input_ids"].shape[1]) * out.shape[0]
        torch.cuda.synchronize()
        return n

    def inst_pass() -> int:
        return sum(b.generate(bt).output_tokens for bt in batches)

    def segment(instrumented: bool) -> float:
        toks, t0 = 0, time.perf_counter()
        if instrumented:
            with PowerSampler([0], 0.1), EnergyWindow(src, [0]):
                while time.perf_counter() - t0 < seconds_each:
                    toks += inst_pass()
                b.synchronize()
        else:
            while time.perf_counter() - t0 < seconds_each:
                toks += bare_pass()
        return toks / (time.perf_counter() - t0)

    for _ in range(3):
        bare_pass()
        inst_pass()
    bare, inst = [], []
    for r in range(rounds):
        first_inst = r % 2 == 1
        for instrumented in (first_inst, not first_inst):
            (inst if instrumented else bare).append(segment(instrumented))
    b.unload()
    if src is not None:
        src.close()
    return {
        "bare_tok_per_s": bare, "instrumented_tok_per_s": inst,
        "ratio_of_medians_pct": 100.0 * statistics.median(inst) / statistics.median(bare),
    }


def run_one(cfg: ExperimentConfig, out_dir: Path, external: ExternalReader,
            extras_names: list[str]) -> dict[str, Any]:
    holder: dict[str, Any] = {}
    real_select = runner.select_source
    real_sampler = runner.PowerSampler

    class CapturingSampler(real_sampler):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            holder["sampler"] = self

    def tee_select(requested: str, device: str, idx: list[int]):
        src, why = real_select(requested, device, idx)
        extras = {}
        # slowest first (codecarbon's start/stop take ~0.1-0.5 s), so the light readers sit
        # innermost, around the same window as the harness's source
        for n in sorted(extras_names, key=lambda n: n != "codecarbon"):
            if src is not None and n == src.name:
                continue
            cls = source_class(n)
            if cls is None:
                holder.setdefault("extra_unavailable", {})[n] = "not installed"
                continue
            ok, reason = cls.available(idx)
            if not ok:
                holder.setdefault("extra_unavailable", {})[n] = reason
                continue
            extras[n] = cls(idx)
        tee = TeeSource(src, extras, external,
                        lambda: getattr(holder.get("sampler"), "phase", "?"))
        holder["tee"] = tee
        return tee, why

    runner.select_source = tee_select
    runner.PowerSampler = CapturingSampler
    try:
        run_dir = out_dir / cfg.name
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(experiment_id=cfg.name, run_id=cfg.name, config=cfg,
                       config_hash=cfg.config_hash(), gpus=list(cfg.runtime.gpus) or [0])
        res = runner.run_experiment(spec, run_dir)
    finally:
        runner.select_source = real_select
        runner.PowerSampler = real_sampler
    (run_dir / "result.json").write_text(res.model_dump_json(indent=2))
    tee: TeeSource = holder["tee"]
    full = next(w for w in tee.windows if w["phase"] == "decode")
    smp = holder.get("sampler")
    trace_avg = None
    if smp is not None and "t0" in full:
        trace_avg = smp.integrate(full["t0"], full["t1"], column="power_avg_w")
    e = res.energy
    row: dict[str, Any] = {
        "batch": cfg.workload.batch_size,
        "energy_method": e.method, "energy_method_version": e.method_version,
        "window_s": e.duration_s, "harness_j": e.total_j,
        "external_nvml_j": full["external_nvml_j"],
        "harness_vs_external_pct": pct(e.total_j, full["external_nvml_j"]),
        "gpu_indices": e.gpu_indices, "harness_per_gpu_j": e.per_gpu_j,
        "external_per_gpu_j": full["external_per_gpu_j"],
        "per_gpu_vs_external_pct": None if not e.per_gpu_j else [
            pct(a, b) for a, b in zip(e.per_gpu_j, full["external_per_gpu_j"])],
        "memory": res.memory.model_dump(),
        "trace_j": e.timeseries_j, "trace_power_method": e.timeseries_power_method,
        "trace_vs_counter_pct": pct(e.timeseries_j, e.total_j),
        "trace_avg_power_j": trace_avg,
        "trace_avg_vs_counter_pct": pct(trace_avg, e.total_j),
        "trace_samples_in_window": None if smp is None else sum(
            1 for x in smp.samples if full.get("t0", 0) <= x.t <= full.get("t1", 0)),
        "sources_side_by_side_j": {e.method: e.total_j, **{k[:-2]: v for k, v in full.items()
                                   if k.endswith("_j") and k not in ("primary_j",
                                                                     "external_nvml_j")}},
        "source_errors": full["errors"] | holder.get("extra_unavailable", {}),
        "baseline_w": e.baseline_power_w, "adjusted_j": e.adjusted_j,
        "tok_per_s": res.throughput.output_tokens_per_s,
        "prefill_j_per_tok": res.prefill.energy_per_token_j,
        "decode_j_per_tok": res.decode.energy_per_token_j,
        "prefill_tok_per_s": res.prefill.tokens_per_s,
        "ttft_p50_ms": res.latency.ttft.p50 * 1e3 if res.latency.ttft else None,
        "itl_p50_ms": res.latency.itl.p50 * 1e3 if res.latency.itl else None,
        "itl_p99_ms": res.latency.itl.p99 * 1e3 if res.latency.itl else None,
        "flops_method": res.flops.method, "flops_per_out_token": res.flops.per_output_token,
        "warmup_runs": res.warmup.runs, "warmup_converged": res.warmup.converged,
        "compile_time_s": res.setup.compile_time_s, "notes": res.setup.notes,
        "power_phases": [p.model_dump() for p in res.power_phases],
        "warnings": res.warnings,
        "all_windows": tee.windows,
    }
    holder["result"] = res
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="1,8,32,128")
    ap.add_argument("--window", type=float, default=6.0)
    ap.add_argument("--skip-fast", action="store_true")
    ap.add_argument("--ab-rounds", type=int, default=6)
    ap.add_argument("--ab-seconds", type=float, default=2.0)
    ap.add_argument("--only-fast", action="store_true")
    ap.add_argument("--gpus", default="0", help="NVML indices; >1 shards one model over them")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LLEM_BASELINE_CACHE", str(out / "baseline-cache"))
    prompts = Path(tempfile.mkdtemp()) / "long_prompts.txt"
    # >= 128 byte-tokens each so every request has exactly 128 input tokens (no padding)
    base = load_prompts(make_cfg(1, 1, False, "builtin:prompts").workload.model_copy(
        update={"dataset": "builtin:prompts", "num_prompts": 32}))
    prompts.write_text("\n".join((p + " ") * 6 for p in base) + "\n")
    gpus = [int(x) for x in args.gpus.split(",")]
    external = ExternalReader(gpus)
    extras = ["zeus", "nvml", "codecarbon"]
    report: dict[str, Any] = {"rows": [], "fast": None, "errors": []}
    from llem_harness import environment

    report["environment"] = environment.collect(
        "cuda", gpus, PyTorchBackend.version(), "local").model_dump(mode="json")
    batches = [] if args.only_fast else [int(x) for x in args.batches.split(",")]
    for bsz in batches:
        cfg = make_cfg(bsz, args.window, False, str(prompts), gpus)
        try:
            row = run_one(cfg, out, external, extras)
            if args.ab_rounds:
                ab = overhead_ab(cfg, args.ab_rounds, args.ab_seconds)
                row["overhead_ab"] = ab
                row["bare_generate_tok_per_s"] = statistics.median(ab["bare_tok_per_s"])
                row["instrumented_vs_bare_pct"] = ab["ratio_of_medians_pct"]
            report["rows"].append(row)
            print(json.dumps({k: row.get(k) for k in ("batch", "gpu_indices", "harness_per_gpu_j",
                              "external_per_gpu_j", "harness_vs_external_pct",
                              "trace_vs_counter_pct", "tok_per_s", "bare_generate_tok_per_s",
                              "instrumented_vs_bare_pct", "prefill_j_per_tok",
                              "decode_j_per_tok", "sources_side_by_side_j")}), flush=True)
        except Exception:
            report["errors"].append(f"batch {bsz}: {traceback.format_exc()}")
            print(report["errors"][-1], flush=True)
        (out / "gpu_validation.json").write_text(json.dumps(report, indent=2, default=str))
    if not args.skip_fast:
        cfg = make_cfg(1, args.window, True, str(prompts))
        try:
            row = run_one(cfg, out, external, extras)
            bare = bare_generate_tps(cfg, max(args.window, 3.0))
            row["bare_generate_tok_per_s"] = bare["tok_per_s"]
            row["instrumented_vs_bare_pct"] = 100.0 * row["tok_per_s"] / bare["tok_per_s"]
            report["fast"] = row
            print(json.dumps({k: row[k] for k in ("tok_per_s", "compile_time_s",
                              "bare_generate_tok_per_s", "harness_vs_external_pct",
                              "warmup_runs", "notes")}), flush=True)
        except Exception:
            report["errors"].append(f"fast: {traceback.format_exc()}")
            print(report["errors"][-1], flush=True)
    external.close()
    (out / "gpu_validation.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "gpu_validation.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def _f(x: Any, nd: int = 2) -> str:
    return "—" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def markdown(rep: dict[str, Any]) -> str:
    env = rep.get("environment", {})
    gpu = (env.get("gpus") or [{}])[0]
    lines = [
        f"GPU: {gpu.get('name')} (power limit {gpu.get('power_limit_w')} W), driver "
        f"{env.get('driver_version')}, packages {env.get('packages')}",
        "",
        "| batch | method | window s | harness J | ext. NVML J | diff % | trace J | trace diff %"
        " | avg-power trace diff %"
        " | zeus / nvml / codecarbon J | tok/s | A/B bare tok/s | A/B instr./bare %"
        " | prefill J/tok"
        " | decode J/tok | TTFT p50 ms | ITL p50 ms | FLOPs |",
        "|" + "---|" * 18,
    ]
    rows = list(rep["rows"]) + ([dict(rep["fast"], batch="1 fast")] if rep.get("fast") else [])
    for r in rows:
        sbs = r["sources_side_by_side_j"]
        lines.append(
            f"| {r['batch']} | {r['energy_method']} | {_f(r['window_s'])} | {_f(r['harness_j'], 1)}"
            f" | {_f(r['external_nvml_j'], 1)} | {_f(r['harness_vs_external_pct'], 3)}"
            f" | {_f(r['trace_j'], 1)} | {_f(r['trace_vs_counter_pct'])}"
            f" | {_f(r.get('trace_avg_vs_counter_pct'))}"
            f" | {_f(sbs.get('zeus'), 1)} / {_f(sbs.get('nvml'), 1)} / "
            f"{_f(sbs.get('codecarbon'), 1)}"
            f" | {_f(r['tok_per_s'], 1)} | {_f(r.get('bare_generate_tok_per_s'), 1)}"
            f" | {_f(r.get('instrumented_vs_bare_pct'), 1)} | {_f(r['prefill_j_per_tok'], 5)}"
            f" | {_f(r['decode_j_per_tok'], 5)} | {_f(r['ttft_p50_ms'])} | {_f(r['itl_p50_ms'])}"
            f" | {r['flops_method']} |"
        )
    if rep.get("fast"):
        lines += ["", f"fast setting compile time (outside the window): "
                  f"{_f(rep['fast']['compile_time_s'])} s; notes: {rep['fast']['notes']}"]
    for e in rep.get("errors", []):
        lines += ["", "error: " + e.splitlines()[-1]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
