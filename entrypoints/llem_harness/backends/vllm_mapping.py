"""ExperimentConfig -> vLLM arguments, as pure functions (no vllm import).

Kept apart from :mod:`llem_harness.backends.vllm` so that the mapping can be unit-tested on a
machine without vLLM or a GPU, printed by ``llem run --dry-run``, and checked against the
real ``EngineArgs`` / ``SamplingParams`` names (tests/unit/llem_harness/backends/
test_vllm_mapping.py) so that a renamed engine argument fails a test instead of a GPU run.
"""

from __future__ import annotations

from typing import Any

from llem_schema.config import DecodingConfig, ExperimentConfig

#: VLLMConfig field -> vllm.EngineArgs field. Emitted only when the value is not None, so
#: vLLM's own default applies to anything left unset (and --dry-run shows what was chosen).
ENGINE_FIELD_MAP: dict[str, str] = {
    "dtype": "dtype",
    "quantization": "quantization",
    "kv_cache_dtype": "kv_cache_dtype",
    "tensor_parallel_size": "tensor_parallel_size",
    "pipeline_parallel_size": "pipeline_parallel_size",
    "data_parallel_size": "data_parallel_size",
    "distributed_executor_backend": "distributed_executor_backend",
    "disable_custom_all_reduce": "disable_custom_all_reduce",
    "gpu_memory_utilization": "gpu_memory_utilization",
    "kv_cache_memory_bytes": "kv_cache_memory_bytes",
    "block_size": "block_size",
    "enable_prefix_caching": "enable_prefix_caching",
    "cpu_offload_gb": "cpu_offload_gb",
    "max_num_seqs": "max_num_seqs",
    "max_num_batched_tokens": "max_num_batched_tokens",
    "max_model_len": "max_model_len",
    "enable_chunked_prefill": "enable_chunked_prefill",
    "scheduling_policy": "scheduling_policy",
    "async_scheduling": "async_scheduling",
    "enforce_eager": "enforce_eager",
    "compilation_config": "compilation_config",
    "max_cudagraph_capture_size": "max_cudagraph_capture_size",
    "trust_remote_code": "trust_remote_code",
}

#: Engine arguments set by the mapping itself rather than copied from a field.
DERIVED_ENGINE_ARGS: tuple[str, ...] = ("model", "seed", "speculative_config", "disable_log_stats")

#: Where each field of ``decoding:`` / ``vllm:`` lands in SamplingParams.
SAMPLING_ARGS: tuple[str, ...] = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "seed",
    "max_tokens",
    "min_tokens",
    "ignore_eos",
)

#: ``extra:`` key whose dict goes to SamplingParams instead of EngineArgs.
EXTRA_SAMPLING_KEY = "sampling"


def engine_arg_names() -> set[str]:
    """Every EngineArgs name this mapping can emit (what the name-drift test checks)."""
    return set(ENGINE_FIELD_MAP.values()) | set(DERIVED_ENGINE_ARGS)


def _speculative(config: ExperimentConfig) -> dict[str, Any] | None:
    spec = config.vllm.speculative
    if spec is None:
        return None
    out: dict[str, Any] = {
        "method": spec.method,
        "num_speculative_tokens": spec.num_speculative_tokens,
    }
    for name in ("model", "prompt_lookup_max", "prompt_lookup_min", "draft_tensor_parallel_size"):
        value = getattr(spec, name)
        if value is not None:
            out[name] = value
    out.update(spec.options)
    return out


def engine_kwargs(config: ExperimentConfig, model_path: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM(**kw)`` / ``EngineArgs(**kw)``.

    ``model_path`` is the resolved local path (the harness resolves cache entries); the
    config's ``model`` string is used when it is not given. ``disable_log_stats`` is forced
    off because ``RequestOutput.metrics`` (TTFT, token timestamps) is only filled when vLLM
    logs stats; ``extra:`` keys (except ``sampling``) are applied last and win.
    """
    section = config.vllm
    kw: dict[str, Any] = {"model": model_path or config.model}
    for field, arg in ENGINE_FIELD_MAP.items():
        value = getattr(section, field)
        if value is not None:
            kw[arg] = value
    kw["seed"] = section.seed if section.seed is not None else config.decoding.seed
    spec = _speculative(config)
    if spec is not None:
        kw["speculative_config"] = spec
    kw["disable_log_stats"] = False
    for key, value in config.extra.items():
        if key != EXTRA_SAMPLING_KEY:
            kw[key] = value
    return kw


def _decoding_sampling(decoding: DecodingConfig) -> dict[str, Any]:
    """The cross-backend ``decoding:`` section in vLLM's terms.

    greedy -> temperature 0 (vLLM samples greedily at temperature 0 and then ignores
    top_p/top_k); top_k 0 ("disabled" in llem) -> -1 ("disabled" in every vLLM version).
    Beam search has no SamplingParams form; :func:`llem_schema.compat.validate_backend_config`
    rejects it before a container starts.
    """
    if decoding.strategy == "greedy":
        return {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0}
    return {
        "temperature": decoding.temperature,
        "top_p": decoding.top_p,
        "top_k": decoding.top_k if decoding.top_k > 0 else -1,
        "min_p": decoding.min_p,
    }


def sampling_kwargs(config: ExperimentConfig, max_tokens: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams(**kw)``.

    ``max_tokens`` overrides ``decoding.max_new_tokens`` (``prefill()`` uses 1); min_tokens
    is clipped so the override stays valid.
    """
    decoding = config.decoding
    limit = decoding.max_new_tokens if max_tokens is None else max_tokens
    kw = _decoding_sampling(decoding)
    kw.update(
        {
            "repetition_penalty": decoding.repetition_penalty,
            "presence_penalty": config.vllm.presence_penalty,
            "frequency_penalty": config.vllm.frequency_penalty,
            "n": config.vllm.n,
            "seed": config.vllm.seed if config.vllm.seed is not None else decoding.seed,
            "max_tokens": limit,
            "min_tokens": min(decoding.min_new_tokens, limit),
            "ignore_eos": decoding.ignore_eos,
        }
    )
    extra_sampling = config.extra.get(EXTRA_SAMPLING_KEY)
    if isinstance(extra_sampling, dict):
        kw.update(extra_sampling)
    return kw


def describe_engine_args(config: ExperimentConfig) -> dict[str, Any]:
    """What ``llem run --backend vllm --dry-run`` prints: the arguments the engine would get."""
    return {
        "backend": "vllm",
        "engine_class": "vllm.LLM (vllm.EngineArgs)",
        "engine_kwargs": engine_kwargs(config),
        "sampling_class": "vllm.SamplingParams",
        "sampling_kwargs": sampling_kwargs(config),
        "prefill_sampling_kwargs": sampling_kwargs(config, max_tokens=1),
        "notes": [
            "prefill is measured as generation with max_tokens=1 (vLLM has no prefill-only "
            "call); it includes sampling of one token.",
            "disable_log_stats=False so RequestOutput.metrics carries TTFT/token timestamps.",
        ],
    }
