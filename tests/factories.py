"""Reusable builders of valid synthetic results and result directories for tests/benchmarks.

``make_result`` returns a fully valid :class:`ExperimentResult` whose numbers are internally
consistent (energy = power x time, per-token = total / tokens, ...), so analysis code is
exercised on data that looks like what the harness writes. Override anything with dotted
paths: ``make_result(set={"energy.total_j": None}, null={"energy.total_j": "no counter"})``.
"""

from __future__ import annotations

import copy
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from llem_schema.atomic import atomic_write_text
from llem_schema.config import ExperimentConfig
from llem_schema.result import ExperimentResult
from llem_schema.runspec import RESULT_FILE, TIMESERIES_FILE
from llem_schema.version import SCHEMA_VERSION

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def _set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value


#: the environment block every generated result shares
ENVIRONMENT: dict[str, Any] = {
    "host": {"hostname": "node01", "os": "Linux-6.1", "cpu_model": "EPYC", "cpu_count": 64,
             "memory_total_bytes": 512 * 2**30, "python": "3.11.2"},
    "device": "cuda",
    "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0000",
              "memory_total_bytes": 80 * 2**30, "power_limit_w": 700.0}],
    "driver_version": "550.54.15",
    "cuda_driver_version": "12.4",
    "cuda_runtime_version": "12.4",
    "packages": {"torch": "2.4.0", "transformers": "4.45.0"},
    "runtime": "docker",
    "image_ref": "llenergymeasure/pytorch:0.1.0-cuda12",
    "image_digest": "sha256:" + "ab" * 32,
}

#: result groups whose values no test varies
FIXED_GROUPS: dict[str, Any] = {
    "memory": {"device": "cuda", "peak_allocated_bytes": 20 * 2**30,
               "peak_reserved_bytes": 22 * 2**30, "model_bytes": 14 * 2**30,
               "host_peak_rss_bytes": 4 * 2**30, "null_reasons": {}},
    "warmup": {"runs": 3, "converged": True, "final_cv": 0.01},
    "setup": {"load_time_s": 3.2, "device": "cuda", "device_indices": [0],
              "measured_passes": 1, "prefill_passes": 1},
}


def result_dict(
    *,
    config: ExperimentConfig | dict[str, Any] | None = None,
    study_id: str | None = "study-20260101-120000",
    experiment_id: str | None = None,
    cycle: int = 0,
    seed: int | None = None,
    power_w: float = 250.0,
    tokens_per_s: float | None = None,
    noise: float = 0.03,
    ttft_s: float = 0.05,
    itl_s: float = 0.02,
    status: str = "ok",
) -> dict[str, Any]:
    """A valid result as a plain dict (fast path for generating thousands of files)."""
    if config is None:
        config = ExperimentConfig()
    elif isinstance(config, dict):
        config = ExperimentConfig.model_validate(config)
    rng = random.Random(seed if seed is not None else cycle)
    h = config.config_hash()
    exp_id = experiment_id or f"e000-{h[:8]}"
    w = config.workload
    out_tokens = w.num_prompts * config.decoding.max_new_tokens
    in_tokens = w.num_prompts * 64
    # bigger batches: more throughput, a bit more power (a rough but monotone model)
    length_factor = (32 / config.decoding.max_new_tokens) ** 0.1
    base_tps = tokens_per_s or 40.0 * w.batch_size**0.8 * length_factor
    tps = base_tps * (1 + rng.gauss(0, noise))
    wall = out_tokens / tps
    p = power_w * (1 + 0.1 * math.log2(w.batch_size)) * (1 + rng.gauss(0, noise / 2))
    total_j = p * wall
    baseline = 60.0
    prefill_t = wall * 0.1
    decode_t = wall - prefill_t
    ttft = ttft_s * (1 + rng.gauss(0, noise))
    itl = itl_s * (1 + rng.gauss(0, noise))

    def lat(v: float) -> dict[str, float | int]:
        return {"n": w.num_prompts, "mean": v, "p50": v, "p90": v * 1.2, "p95": v * 1.3,
                "p99": v * 1.5, "min": v * 0.8, "max": v * 1.6}

    started = T0 + timedelta(minutes=cycle)
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "experiment_id": exp_id,
        "study_id": study_id,
        "run_id": f"{exp_id}/cycle-{cycle}",
        "cycle": cycle,
        "started_at": started.isoformat(),
        "finished_at": (started + timedelta(seconds=wall + 5)).isoformat(),
        "config": config.model_dump(mode="json"),
        "config_hash": h,
        "backend": config.backend,
        "model": config.model,
        "environment": copy.deepcopy(ENVIRONMENT),
        "energy": {
            "total_j": total_j, "baseline_power_w": baseline,
            "adjusted_j": total_j - baseline * wall, "duration_s": wall,
            "per_output_token_j": total_j / out_tokens,
            "per_token_j": total_j / (out_tokens + in_tokens),
            "per_request_j": total_j / w.num_prompts, "mean_power_w": p,
            "peak_power_w": p * 1.15, "per_gpu_j": [total_j], "method": "nvml",
            "method_version": "12.550", "gpu_indices": [0], "null_reasons": {},
        },
        "prefill": {"tokens": in_tokens, "time_s": prefill_t, "energy_j": total_j * 0.15,
                    "tokens_per_s": in_tokens / prefill_t,
                    "energy_per_token_j": total_j * 0.15 / in_tokens, "mean_power_w": p * 1.1,
                    "null_reasons": {}},
        "decode": {"tokens": out_tokens, "time_s": decode_t, "energy_j": total_j * 0.85,
                   "tokens_per_s": out_tokens / decode_t,
                   "energy_per_token_j": total_j * 0.85 / out_tokens, "mean_power_w": p,
                   "null_reasons": {}},
        "latency": {"ttft": lat(ttft), "itl": lat(itl), "e2e": lat(wall / 4), "null_reasons": {}},
        "throughput": {
            "num_requests": w.num_prompts, "input_tokens": in_tokens, "output_tokens": out_tokens,
            "wall_time_s": wall, "output_tokens_per_s": tps,
            "total_tokens_per_s": (in_tokens + out_tokens) / wall,
            "requests_per_s": w.num_prompts / wall, "requested_rate": None,
            "achieved_rate": None,
            "null_reasons": {"requested_rate": "offline traffic",
                             "achieved_rate": "offline traffic"},
        },
        "flops": {"total": 2e9 * out_tokens, "per_output_token": 2e9, "prefill": 1e11,
                  "decode": 2e9 * out_tokens - 1e11, "method": "architecture",
                  "null_reasons": {}},
        **copy.deepcopy(FIXED_GROUPS),
        "power_phases": [{"phase": "decode", "samples": 10, "mean_w": p, "peak_w": p * 1.15}],
        "timeseries_file": TIMESERIES_FILE,
        "warnings": [],
    }


def make_result(
    *,
    set: dict[str, Any] | None = None,
    null: dict[str, str] | None = None,
    **kwargs: Any,
) -> ExperimentResult:
    """A valid ExperimentResult. ``set``: dotted path -> value; ``null``: dotted path ->
    reason (sets the metric to null and records the reason in its group's null_reasons)."""
    data = result_dict(**kwargs)
    for path, value in (set or {}).items():
        _set_dotted(data, path, value)
    if any(p.startswith("config.") for p in (set or {})):  # keep the hash honest
        data["config_hash"] = ExperimentConfig.model_validate(data["config"]).config_hash()
    for path, reason in (null or {}).items():
        group, _, field = path.rpartition(".")
        _set_dotted(data, path, None)
        node = data
        for p in group.split("."):
            node = node[p]
        node["null_reasons"][field] = reason
    return ExperimentResult.model_validate(data)


def write_result(run_dir: Path, result: ExperimentResult | dict[str, Any]) -> Path:
    """Write ``result.json`` the way the harness does (atomically)."""
    import json

    run_dir.mkdir(parents=True, exist_ok=True)
    text = (result.model_dump_json(indent=2) if isinstance(result, ExperimentResult)
            else json.dumps(result, indent=2))
    atomic_write_text(run_dir / RESULT_FILE, text + "\n")
    return run_dir / RESULT_FILE


def write_timeseries(run_dir: Path, *, seconds: float = 12.0, interval: float = 0.1,
                     gpus: int = 1, baseline_w: float = 60.0) -> Path:
    """A phase-labelled power trace like the harness sampler writes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    phases = [("baseline", 0.25), ("warmup", 0.15), ("prefill", 0.1), ("decode", 0.4),
              ("idle", 0.1)]
    level = {"baseline": baseline_w, "warmup": 200.0, "prefill": 320.0, "decode": 260.0,
             "idle": 80.0}
    cols: dict[str, list[Any]] = {k: [] for k in ("t_s", "gpu", "phase", "power_w", "util_pct",
                                                   "mem_used_bytes")}
    rng = random.Random(0)
    t = 0.0
    for phase, frac in phases:
        end = t + frac * seconds
        while t < end:
            for g in range(gpus):
                cols["t_s"].append(t)
                cols["gpu"].append(g)
                cols["phase"].append(phase)
                cols["power_w"].append(level[phase] * (1 + rng.gauss(0, 0.03)))
                cols["util_pct"].append(0.0 if phase in ("baseline", "idle") else 95.0)
                cols["mem_used_bytes"].append(20 * 2**30)
            t += interval
    path = run_dir / TIMESERIES_FILE
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def make_study(
    results_dir: Path,
    study_id: str = "sweep-20260101-120000",
    *,
    batch_sizes: tuple[int, ...] = (1, 4, 16),
    cycles: int = 5,
    timeseries: bool = False,
    manifest: bool = True,
) -> Path:
    """A study directory with one experiment per batch size x ``cycles`` runs."""
    import json

    study_dir = results_dir / study_id
    runs = []
    for i, bs in enumerate(batch_sizes):
        cfg = ExperimentConfig.model_validate({"name": f"sweep[batch_size={bs}]",
                                               "workload": {"batch_size": bs}})
        exp_id = f"e{i:03d}-{cfg.config_hash()[:8]}"
        for c in range(cycles):
            run_dir = study_dir / exp_id / f"cycle-{c}"
            write_result(run_dir, result_dict(config=cfg, study_id=study_id,
                                              experiment_id=exp_id, cycle=c, seed=1000 * i + c))
            if timeseries:
                write_timeseries(run_dir)
            runs.append({"run_id": f"{exp_id}/cycle-{c}", "experiment_id": exp_id,
                         "experiment_index": i, "cycle": c, "position": len(runs),
                         "run_dir": f"{exp_id}/cycle-{c}", "state": "done"})
    if manifest:
        atomic_write_text(study_dir / "manifest.json", json.dumps({
            "schema_version": "1.0", "study_id": study_id, "name": study_id.rsplit("-", 2)[0],
            "study_hash": "0" * 16, "created_at": T0.isoformat(), "runs": runs}))
    return study_dir
