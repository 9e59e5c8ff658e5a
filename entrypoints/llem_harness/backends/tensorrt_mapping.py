"""ExperimentConfig -> TensorRT-LLM LLM API arguments, as pure functions (no tensorrt_llm).

The result is plain data: nested dicts for ``build_config``, ``kv_cache_config``,
``quant_config``, ``extended_runtime_perf_knob_config`` and ``scheduler_config``, and enum
members as their names ("FP8", "PAGED"). :mod:`llem_harness.backends.tensorrt` turns them
into the real objects inside the container. Keeping it data means the mapping is testable
without the engine, printable by ``--dry-run``, hashable for the engine cache, and checkable
against the real class fields (tests/unit/llem_harness/backends/test_tensorrt_mapping.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llem_schema.backends.tensorrt import TRT_KV_CACHE_ALGOS, TRT_QUANT_ALGOS
from llem_schema.config import DecodingConfig, ExperimentConfig

#: Nested argument -> the TensorRT-LLM class whose fields it must name (for the drift test).
NESTED_CLASSES: dict[str, str] = {
    "": "LlmArgs",
    "build_config": "BuildConfig",
    "build_config.plugin_config": "PluginConfig",
    "kv_cache_config": "KvCacheConfig",
    "quant_config": "QuantConfig",
    "extended_runtime_perf_knob_config": "ExtendedRuntimePerfKnobConfig",
    "scheduler_config": "SchedulerConfig",
}

#: TensorRTConfig field -> dotted engine argument. Emitted only when the value is not None.
ENGINE_FIELD_MAP: dict[str, str] = {
    "dtype": "dtype",
    "tensor_parallel_size": "tensor_parallel_size",
    "pipeline_parallel_size": "pipeline_parallel_size",
    "fast_build": "fast_build",
    "trust_remote_code": "trust_remote_code",
    "enable_chunked_context": "enable_chunked_prefill",
    "max_batch_size": "build_config.max_batch_size",
    "max_num_tokens": "build_config.max_num_tokens",
    "opt_num_tokens": "build_config.opt_num_tokens",
    "max_input_len": "build_config.max_input_len",
    "max_seq_len": "build_config.max_seq_len",
    "max_beam_width": "build_config.max_beam_width",
    "paged_kv_cache": "build_config.kv_cache_type",
    "use_paged_context_fmha": "build_config.plugin_config.use_paged_context_fmha",
    "use_fp8_context_fmha": "build_config.plugin_config.use_fp8_context_fmha",
    "multiple_profiles": "build_config.plugin_config.multiple_profiles",
    "kv_cache_free_gpu_memory_fraction": "kv_cache_config.free_gpu_memory_fraction",
    "kv_cache_max_tokens": "kv_cache_config.max_tokens",
    "tokens_per_block": "kv_cache_config.tokens_per_block",
    "enable_block_reuse": "kv_cache_config.enable_block_reuse",
    "quantization": "quant_config.quant_algo",
    "quant_group_size": "quant_config.group_size",
    "kv_cache_dtype": "quant_config.kv_cache_quant_algo",
    "cuda_graphs": "extended_runtime_perf_knob_config.cuda_graph_mode",
    "cuda_graph_cache_size": "extended_runtime_perf_knob_config.cuda_graph_cache_size",
    "multi_block_mode": "extended_runtime_perf_knob_config.multi_block_mode",
    "capacity_scheduler_policy": "scheduler_config.capacity_scheduler_policy",
    "context_chunking_policy": "scheduler_config.context_chunking_policy",
}

DERIVED_ENGINE_ARGS: tuple[str, ...] = ("model",)

SAMPLING_ARGS: tuple[str, ...] = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "length_penalty",
    "n",
    "best_of",
    "use_beam_search",
    "seed",
    "max_tokens",
    "min_tokens",
    "ignore_eos",
)

EXTRA_SAMPLING_KEY = "sampling"

#: Dotted engine arguments that change the compiled engine (part of the cache key). Runtime
#: knobs (KV fraction, CUDA graphs, scheduler) are applied when loading, not building.
BUILD_AFFECTING_PREFIXES: tuple[str, ...] = (
    "dtype",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "fast_build",
    "build_config",
    "quant_config",
)


def engine_arg_paths() -> set[str]:
    """Every dotted engine argument this mapping can emit (what the drift test checks)."""
    return set(ENGINE_FIELD_MAP.values()) | set(DERIVED_ENGINE_ARGS)


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _engine_value(field: str, value: Any, config: ExperimentConfig) -> Any:
    """Translate an llem value into the engine's vocabulary (enum member names)."""
    if field == "paged_kv_cache":
        return "PAGED" if value else "CONTINUOUS"
    if field == "quantization":
        return TRT_QUANT_ALGOS[value]
    if field == "kv_cache_dtype":
        return TRT_KV_CACHE_ALGOS[value]
    return value


def engine_kwargs(config: ExperimentConfig, model_path: str | None = None) -> dict[str, Any]:
    """Keyword arguments for the TensorRT-engine ``LLM(**kw)`` (TrtLlmArgs), nested as data.

    Derived values: ``build_config.max_beam_width`` defaults to ``decoding.num_beams`` (a beam
    request wider than the engine is rejected at run time); paged context FMHA is switched on
    when chunked context or KV block reuse needs it. ``extra:`` keys (except ``sampling``) are
    deep-merged last, so ``extra: {kv_cache_config: {host_cache_size: ...}}`` works.
    """
    section = config.tensorrt
    kw: dict[str, Any] = {"model": model_path or config.model}
    for field, path in ENGINE_FIELD_MAP.items():
        value = getattr(section, field)
        if value is None:
            continue
        mapped = _engine_value(field, value, config)
        if mapped is not None:
            _set_path(kw, path, mapped)
    if section.max_beam_width is None:
        _set_path(kw, "build_config.max_beam_width", config.decoding.num_beams)
    if section.use_paged_context_fmha is None and (
        section.enable_chunked_context or section.enable_block_reuse
    ):
        _set_path(kw, "build_config.plugin_config.use_paged_context_fmha", True)
    extra = {k: v for k, v in config.extra.items() if k != EXTRA_SAMPLING_KEY}
    _deep_merge(kw, extra)
    return kw


def _decoding_sampling(decoding: DecodingConfig) -> dict[str, Any]:
    """The cross-backend ``decoding:`` section in TensorRT-LLM's terms.

    greedy -> top_k 1 (TensorRT-LLM's greedy path; temperature left unset), sampling ->
    temperature/top_p/top_k/min_p with top_k 0 meaning "no top-k" in both vocabularies,
    beam -> use_beam_search with best_of = n = num_beams (the beam width).
    """
    if decoding.strategy == "greedy":
        return {"top_k": 1, "top_p": None, "temperature": None}
    if decoding.strategy == "beam":
        return {"use_beam_search": True, "best_of": decoding.num_beams, "n": decoding.num_beams}
    out: dict[str, Any] = {
        "temperature": decoding.temperature,
        "top_p": decoding.top_p,
        "top_k": decoding.top_k,
    }
    if decoding.min_p > 0.0:
        out["min_p"] = decoding.min_p
    return out


def sampling_kwargs(config: ExperimentConfig, max_tokens: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``tensorrt_llm.SamplingParams(**kw)``; ``max_tokens`` overrides."""
    decoding = config.decoding
    section = config.tensorrt
    limit = decoding.max_new_tokens if max_tokens is None else max_tokens
    kw: dict[str, Any] = {"n": section.n}
    kw.update(_decoding_sampling(decoding))
    kw.update(
        {
            "repetition_penalty": decoding.repetition_penalty,
            "presence_penalty": section.presence_penalty,
            "frequency_penalty": section.frequency_penalty,
            "seed": decoding.seed,
            "max_tokens": limit,
            "min_tokens": min(decoding.min_new_tokens, limit),
            "ignore_eos": decoding.ignore_eos,
        }
    )
    if section.length_penalty is not None:
        kw["length_penalty"] = section.length_penalty
    extra_sampling = config.extra.get(EXTRA_SAMPLING_KEY)
    if isinstance(extra_sampling, dict):
        kw.update(extra_sampling)
    return kw


def build_settings(config: ExperimentConfig) -> dict[str, Any]:
    """The subset of :func:`engine_kwargs` that determines the compiled engine."""
    kw = engine_kwargs(config)
    return {k: v for k, v in kw.items() if k.split(".")[0] in BUILD_AFFECTING_PREFIXES}


def engine_cache_key(config: ExperimentConfig, engine_version: str = "unknown") -> str:
    """Stable key for reusing a built engine: model + build settings + TensorRT-LLM version.

    Two experiments of a study that differ only in runtime knobs (KV fraction, CUDA graphs,
    batch size of the workload, sampling) share one engine, so its build is paid once.
    """
    blob = json.dumps(
        {"model": config.model, "build": build_settings(config), "version": engine_version},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def describe_engine_args(config: ExperimentConfig) -> dict[str, Any]:
    """What ``llem run --backend tensorrt --dry-run`` prints."""
    return {
        "backend": "tensorrt",
        "engine_class": "tensorrt_llm LLM (TensorRT engine backend, TrtLlmArgs)",
        "engine_kwargs": engine_kwargs(config),
        "sampling_class": "tensorrt_llm.SamplingParams",
        "sampling_kwargs": sampling_kwargs(config),
        "prefill_sampling_kwargs": sampling_kwargs(config, max_tokens=1),
        "engine_cache_key": engine_cache_key(config),
        "notes": [
            "engines are built once per cache key and reused; build time is reported apart "
            "from inference (LoadInfo.notes / build_time_s).",
            "prefill is measured as generation with max_tokens=1.",
        ],
    }
