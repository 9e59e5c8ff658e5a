"""Prompt sets and request arrival times: what is sent to the model and when."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from llem_harness.prompt_sets import DatasetError, table_prompts
from llem_schema.config import WorkloadConfig


def builtin_prompts() -> list[str]:
    text = (Path(__file__).parent / "data" / "prompts.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


#: a backend's token space: (vocabulary size, special token ids to leave out)
TokenSpace = tuple[int, set[int]]


def synthetic_prompts(workload: WorkloadConfig, space: TokenSpace) -> list[list[int]]:
    """``num_prompts`` prompts of exactly ``input_len`` seeded random token ids.

    Special tokens (BOS/EOS/pad...) are left out so no prompt ends early or reads as
    padding; with equal lengths no batch is padded, so every engine and every peer tool
    runs the identical workload."""
    vocab, special = space
    allowed = [i for i in range(vocab) if i not in special]
    if not allowed:
        raise DatasetError("workload.dataset synthetic: the tokenizer has no ordinary tokens")
    rng = random.Random(workload.seed)
    return [[rng.choice(allowed) for _ in range(workload.input_len)]
            for _ in range(workload.num_prompts)]


def load_prompts(
    workload: WorkloadConfig, token_space: Callable[[], TokenSpace] | None = None
) -> list[str] | list[list[int]]:
    """``num_prompts`` prompts from the dataset, cycling when the set is smaller.
    ``synthetic`` gives token-id lists and needs the backend's ``token_space``."""
    src = workload.dataset
    if src == "synthetic":
        if token_space is None:
            raise DatasetError("workload.dataset synthetic needs a loaded backend's vocabulary")
        return synthetic_prompts(workload, token_space())
    if src == "builtin:prompts":
        prompts = builtin_prompts()
    elif src.endswith(".txt"):
        path = Path(src).expanduser()
        if not path.is_file():
            raise DatasetError(f"workload.dataset: file not found: {src}")
        prompts = [ln.strip() for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    else:
        prompts = table_prompts(workload)
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
