"""Energy agreement: llem's harness against an independent NVML reader and other sources.

Runs the real harness (``runner.run_experiment``) once per configuration with its energy
source wrapped so that, at exactly the harness's window edges, an NVML counter reader in a
separate process (benchmarks/nvml_reader.py) and every other energy source (zeus, nvml,
codecarbon) read too; the 100 ms power trace is integrated over the same window.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from llem_harness import runner
from llem_harness.energy.base import EnergySource
from llem_harness.energy.select import source_class
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


def make_cfg(batch: int, window: float, fast: bool, gpus: list[int] | None = None
             ) -> ExperimentConfig:
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
        "workload": {"dataset": "synthetic", "input_len": 128, "num_prompts": batch,
                     "batch_size": batch},
        "measurement": {"baseline_seconds": 5, "min_window_seconds": window,
                        "warmup_max_runs": 8 if not fast else 12, "warmup_min_runs": 2},
        "runtime": {"runtime": "local", "gpus": gpus},
    })


def run_one(cfg: ExperimentConfig, out_dir: Path, external: ExternalReader,
            extras_names: list[str]) -> dict[str, Any]:
    holder: dict[str, Any] = {}
    from llem_harness.phases import setup

    real_select = setup.select_source
    real_sampler = setup.PowerSampler

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

    setup.select_source = tee_select
    setup.PowerSampler = CapturingSampler
    try:
        run_dir = out_dir / cfg.name
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(experiment_id=cfg.name, run_id=cfg.name, config=cfg,
                       config_hash=cfg.config_hash(), gpus=list(cfg.runtime.gpus) or [0])
        res = runner.run_experiment(spec, run_dir)
    finally:
        setup.select_source = real_select
        setup.PowerSampler = real_sampler
    (run_dir / "result.json").write_text(res.model_dump_json(indent=2))
    row = _row(res, holder["tee"], holder.get("sampler"), cfg,
               holder.get("extra_unavailable", {}))
    holder["result"] = res
    return row


def _row(res: Any, tee: TeeSource, smp: Any, cfg: ExperimentConfig,
         unavailable: dict[str, str]) -> dict[str, Any]:
    """One table row: the harness's figures next to every other reader's, same window."""
    full = next(w for w in tee.windows if w["phase"] == "decode")
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
        "source_errors": full["errors"] | unavailable,
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
    return row



