"""Prompt sets and request arrival times: what is sent to the model and when."""

from __future__ import annotations

import json
import random
from pathlib import Path

from llem_schema.config import WorkloadConfig


class DatasetError(ValueError):
    """The workload's dataset cannot be read."""


def builtin_prompts() -> list[str]:
    text = (Path(__file__).parent / "data" / "prompts.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_prompts(workload: WorkloadConfig) -> list[str]:
    """``num_prompts`` prompts from the dataset, cycling when the set is smaller."""
    src = workload.dataset
    if src == "builtin:prompts":
        prompts = builtin_prompts()
    else:
        path = Path(src).expanduser()
        if not path.is_file():
            raise DatasetError(f"workload.dataset: file not found: {src}")
        if path.suffix == ".jsonl":
            prompts = []
            for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    prompts.append(str(json.loads(line)["prompt"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DatasetError(
                        f"workload.dataset: {src}:{i}: expected a JSON object with 'prompt'"
                    ) from exc
        else:
            prompts = [ln.strip() for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    if not prompts:
        raise DatasetError(f"workload.dataset: {src} holds no prompts")
    return [prompts[i % len(prompts)] for i in range(workload.num_prompts)]


def arrival_times(workload: WorkloadConfig, n_requests: int) -> list[float]:
    """Offsets (s) at which each request arrives: all 0 offline, exponential gaps for poisson."""
    traffic = workload.traffic
    if traffic.mode == "offline" or traffic.rate is None:
        return [0.0] * n_requests
    rng = random.Random(traffic.seed)
    t, out = 0.0, []
    for _ in range(n_requests):
        out.append(t)
        t += rng.expovariate(traffic.rate)
    return out
