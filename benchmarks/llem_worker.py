"""llem's side of the alternating throughput comparison (benchmarks/gpu_validation.py).

Each request runs llem's real harness (:func:`llem_harness.runner.run_experiment`: baseline,
warm-up, measured window, prefill window, FLOPs) on ``builtin:llama-1.1b`` with llem's
default settings, a synthetic workload of ``batch`` prompts x 128 tokens and 128 new tokens,
and ``min_window_seconds = seconds``. One :class:`Session` per setting keeps the model
loaded between requests, as ``study.reuse_model`` does, so a request costs a warm-up
check, the two windows and nothing else.

    python llem_worker.py --serve --out DIR      stdin: {"batch": 32, "seconds": 5}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from llem_harness import runner
from llem_harness.phases.setup import Session
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec

SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "fast": {"cache_implementation": "static", "compile": True},
}


def config(batch: int, seconds: float, setting: str, model: str = "builtin:llama-1.1b"
           ) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "name": f"b{batch}-{setting}",
        "model": model,
        "pytorch": SETTINGS[setting],
        "decoding": {"max_new_tokens": 128},
        "workload": {"dataset": "synthetic", "input_len": 128, "num_prompts": batch,
                     "batch_size": batch},
        "measurement": {"min_window_seconds": seconds, "baseline_seconds": 5},
        "runtime": {"runtime": "local"},
    })


def segment(req: dict[str, Any], sessions: dict[str, Session], out: Path, n: int
            ) -> dict[str, Any]:
    setting = req.get("setting", "default")
    cfg = config(int(req["batch"]), float(req["seconds"]), setting,
                 req.get("model", "builtin:llama-1.1b"))
    run_dir = out / f"{n:03d}-{cfg.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(experiment_id=cfg.name, run_id=run_dir.name, config=cfg,
                   config_hash=cfg.config_hash(), gpus=[0])
    res = runner.run_experiment(spec, run_dir, sessions.setdefault(setting, Session()))
    (run_dir / "result.json").write_text(res.model_dump_json(indent=1))
    measured = next(w for w in res.windows if w.name == "measured")
    return {
        "batch": cfg.workload.batch_size, "setting": setting,
        "tok_per_s": res.throughput.output_tokens_per_s,
        "seconds": res.energy.duration_s, "energy_j": res.energy.total_j,
        "j_per_token": res.energy.per_output_token_j, "method": res.energy.method,
        "gpu_util_mean_pct": measured.gpu_util_mean_pct,
        "warmup_runs": res.warmup.runs, "compile_time_s": res.setup.compile_time_s,
        "reused_model": res.reused_model, "notes": res.setup.notes[-1:],
        "warnings": [w for w in res.warnings if not w.startswith("pytorch: eager")],
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
        print(json.dumps(segment(req, sessions, out, n)), flush=True)
    for s in sessions.values():
        s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
