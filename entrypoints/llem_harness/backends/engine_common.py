"""Pieces shared by the engine backends (vLLM, TensorRT-LLM) that need no engine import.

Kept pure so they are unit-tested here: grouping requests into batches the way
``workload.batching`` says, Poisson arrival times for server-style traffic, and turning
per-request token timestamps into TTFT / inter-token latencies.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llem_harness.backends.base import ModelNotFound, Request
from llem_schema.config import ExperimentConfig, WorkloadConfig


def group_requests(requests: Sequence[Request], workload: WorkloadConfig) -> list[list[Request]]:
    """Group requests per ``workload.batching``: static, sorted (by length) or dynamic.

    dynamic fills a batch until adding the next request would exceed ``token_budget`` input
    tokens (a single request larger than the budget gets a batch of its own), which is how
    engines with continuous batching are usually fed in offline benchmarks.
    """
    if workload.batching == "dynamic":
        budget = workload.token_budget or 0
        batches: list[list[Request]] = []
        current: list[Request] = []
        used = 0
        for req in sorted(requests, key=lambda r: r.input_tokens):
            if current and used + req.input_tokens > budget:
                batches.append(current)
                current, used = [], 0
            current.append(req)
            used += req.input_tokens
        if current:
            batches.append(current)
        return batches
    ordered = list(requests)
    if workload.batching == "sorted":
        ordered.sort(key=lambda r: r.input_tokens)
    size = workload.batch_size
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def poisson_arrivals(n: int, rate: float, seed: int) -> list[float]:
    """Arrival offsets (seconds from start) of ``n`` requests at ``rate`` per second.

    Exponential inter-arrival gaps from a seeded generator, so a study's cycles send the
    same arrival pattern (MLPerf server scenario). The first request arrives at 0.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0")
    rng = random.Random(seed)
    times = [0.0]
    for _ in range(n - 1):
        times.append(times[-1] + rng.expovariate(rate))
    return times[:n]


def latencies_from_token_times(
    submit_s: float, token_times_s: Sequence[float]
) -> tuple[float | None, list[float]]:
    """TTFT and every inter-token gap from the wall times at which tokens arrived.

    Streaming engines hand out tokens in chunks; a chunk of k tokens counts as one arrival
    (the gaps inside it are not observable and are not invented).
    """
    if not token_times_s:
        return None, []
    ttft = token_times_s[0] - submit_s
    gaps = [b - a for a, b in itertools.pairwise(token_times_s)]
    return ttft, gaps


def pin_visible_devices(device_indices: Sequence[int]) -> None:
    """Expose only the experiment's GPUs to an engine that picks devices itself.

    Inside a container the runtime already restricts devices, so an existing
    CUDA_VISIBLE_DEVICES is left alone; under ``--runtime local`` this keeps vLLM /
    TensorRT-LLM on the GPUs listed in ``runtime.gpus``.
    """
    if device_indices and "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in device_indices)


def model_directory(config: ExperimentConfig) -> str:
    """What an engine loads: the configured path/id, or a ``builtin:`` model written to a
    cached Hugging Face directory (see :mod:`llem_harness.backends.materialise`)."""
    from llem_harness.backends import builtin_models

    if not builtin_models.is_builtin(config.model):
        return config.model
    from llem_harness.backends.materialise import materialise

    try:
        return str(materialise(config.model, seed=config.decoding.seed))
    except KeyError as exc:
        raise ModelNotFound(str(exc.args[0])) from exc


def engine_token_space(architecture: dict[str, Any], tokenizer: Any) -> tuple[int, set[int]]:
    """(vocabulary size, special ids) for synthetic prompts on an engine backend: the
    model's vocabulary (what the embedding accepts), the tokenizer's special ids left out."""
    vocab = architecture.get("vocab_size") or len(tokenizer)
    return int(vocab), set(getattr(tokenizer, "all_special_ids", []) or [])


def local_model_dir(model: str) -> Path | None:
    """The directory an engine loads ``model`` from: the path itself, or a hub id's snapshot
    already in the local Hugging Face cache (never a download). None when neither exists."""
    if not model:
        return None
    path = Path(model)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True,
                                      allow_patterns=["*.json", "*.safetensors"]))
    except Exception:
        return None


def _config_dict(hf_config: Any) -> dict[str, Any] | None:
    if hf_config is None:
        return None
    if hasattr(hf_config, "to_dict"):
        return hf_config.to_dict()
    return dict(vars(hf_config))


def engine_architecture(model: str, hf_config: Any = None) -> dict[str, Any]:
    """Architecture and parameter counts for the FLOPs formula of an engine backend, whose
    model runs out of the harness's reach: the model directory's config.json and
    safetensors headers (:func:`llem_harness.flops.model_architecture`), else the config
    the engine loaded (``hf_config``). ``{}`` when neither gives the transformer's shape."""
    from llem_harness import flops

    fallback = _config_dict(hf_config)
    root = local_model_dir(model)
    arch: dict[str, Any] = {}
    if root is not None:
        try:  # a FLOPs estimate must never stop a run: an unreadable config gives none
            arch = flops.model_architecture(root, fallback)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            arch = flops.analytic_architecture(fallback) if fallback else {}
            if arch:
                arch["parameter_source"] += f" (the engine's config; {root}: {exc})"
    else:
        arch = flops.analytic_architecture(fallback) if fallback else {}
    if not arch and fallback:  # the shape only, no counts: keep what the engine said
        keys = ("hidden_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "intermediate_size", "vocab_size")
        arch = {k: fallback[k] for k in keys if fallback.get(k) is not None}
    return arch
