"""Cross-backend checks the host can run before any container starts (pydantic-only).

Each backend section validates itself; what it cannot see is the combination: a decoding
strategy an engine cannot express, parallelism wider than the GPUs listed, or a workload
longer than the engine's context limit. Those fail minutes into a run on a GPU box; here
they fail in milliseconds with one line naming the field.
"""

from __future__ import annotations

from llem_schema.config import ExperimentConfig


def _parallel_errors(config: ExperimentConfig, n_gpus: int | None) -> list[str]:
    section = config.backend_section()
    tp = getattr(section, "tensor_parallel_size", 1)
    pp = getattr(section, "pipeline_parallel_size", 1)
    dp = getattr(section, "data_parallel_size", 1)
    world = tp * pp * dp
    if world <= 1:
        return []
    b = config.backend
    what = f"{b}.tensor_parallel_size ({tp}) x {b}.pipeline_parallel_size ({pp})"
    if dp > 1:
        what += f" x {b}.data_parallel_size ({dp})"
    listed = len(config.runtime.gpus)
    if listed:
        if world > listed:
            return [f"{what} = {world} GPUs, but runtime.gpus lists {listed}; list more GPUs or "
                    "lower the parallel sizes"]
        return []
    if n_gpus is not None and world > n_gpus:
        return [f"{what} = {world} GPUs, but this host has {n_gpus}; lower the parallel sizes"]
    return []


#: generate() arguments the pytorch backend sets from first-class fields; the same key under
#: ``extra:`` would override them unseen, so the result would record one value and measure
#: another
PYTORCH_OWNED_KWARGS = {
    "max_new_tokens": "decoding.max_new_tokens",
    "min_new_tokens": "decoding.min_new_tokens (or decoding.ignore_eos)",
    "repetition_penalty": "decoding.repetition_penalty",
    "do_sample": "decoding.strategy",
    "num_beams": "decoding.num_beams",
    "temperature": "decoding.temperature",
    "top_p": "decoding.top_p",
    "top_k": "decoding.top_k",
    "min_p": "decoding.min_p",
    "pad_token_id": "the tokenizer's pad token (set by the harness)",
}


def _pytorch_errors(config: ExperimentConfig) -> list[str]:
    """``extra:`` keys go to ``generate()`` as keyword arguments: each must be a Python
    name, must not be one the backend sets from a first-class field, and ``sampling`` (the
    vLLM/TensorRT-LLM sampling block) means nothing to transformers."""
    for key in config.extra:
        if key in PYTORCH_OWNED_KWARGS:
            return [f"extra.{key}: set {PYTORCH_OWNED_KWARGS[key]} instead (the pytorch "
                    "backend sets this generate() argument from it)"]
        if key == "sampling":
            return ["extra.sampling: only the vllm and tensorrt backends read a sampling "
                    "block; for pytorch put generate() arguments directly under extra:"]
        if not str(key).isidentifier():
            return [f"extra.{key}: not a generate() keyword argument name"]
    return []


def _vllm_errors(config: ExperimentConfig) -> list[str]:
    errors: list[str] = []
    vllm, decoding = config.vllm, config.decoding
    if decoding.strategy == "beam":
        errors.append(
            "decoding.strategy: beam is not supported by the vllm backend (vLLM SamplingParams "
            "has no beam search); use greedy or sampling, or backend: tensorrt / pytorch"
        )
    errors += _too_short_for_workload("vllm.max_model_len", vllm.max_model_len, config)
    if (
        vllm.enable_chunked_prefill is False
        and vllm.max_num_batched_tokens is not None
        and vllm.max_model_len is not None
        and vllm.max_num_batched_tokens < vllm.max_model_len
    ):
        errors.append(
            f"vllm.max_num_batched_tokens ({vllm.max_num_batched_tokens}) must be >= "
            f"vllm.max_model_len ({vllm.max_model_len}) when vllm.enable_chunked_prefill is "
            "false"
        )
    if vllm.kv_cache_memory_bytes is not None and vllm.gpu_memory_utilization != 0.9:
        errors.append(
            "vllm.kv_cache_memory_bytes and vllm.gpu_memory_utilization both set; "
            "kv_cache_memory_bytes overrides it, so set only one"
        )
    return errors


def _too_short_for_workload(field: str, limit: int | None,
                            config: ExperimentConfig) -> list[str]:
    """An engine's sequence-length limit must hold the longest prompt plus its output."""
    needed = config.workload.max_input_tokens + config.decoding.max_new_tokens
    if limit is None or needed <= limit:
        return []
    return [f"{field} ({limit}) is shorter than workload.max_input_tokens"
            f" + decoding.max_new_tokens ({needed}); raise it or shorten the workload"]


def _tensorrt_errors(config: ExperimentConfig) -> list[str]:
    errors: list[str] = []
    trt, decoding, workload = config.tensorrt, config.decoding, config.workload
    if (
        decoding.strategy == "beam"
        and trt.max_beam_width is not None
        and trt.max_beam_width < decoding.num_beams
    ):
        errors.append(
            f"tensorrt.max_beam_width ({trt.max_beam_width}) is smaller than "
            f"decoding.num_beams ({decoding.num_beams}); the engine cannot run that beam"
        )
    if decoding.strategy == "beam" and trt.n != 1:
        errors.append("tensorrt.n must be 1 with decoding.strategy: beam (n = num_beams there)")
    if trt.max_input_len is not None and workload.max_input_tokens > trt.max_input_len:
        errors.append(
            f"workload.max_input_tokens ({workload.max_input_tokens}) exceeds "
            f"tensorrt.max_input_len ({trt.max_input_len}); prompts would be rejected"
        )
    errors += _too_short_for_workload("tensorrt.max_seq_len", trt.max_seq_len, config)
    if (
        trt.max_num_tokens is not None
        and trt.max_input_len is not None
        and trt.max_num_tokens < trt.max_input_len
        and not trt.enable_chunked_context
    ):
        errors.append(
            f"tensorrt.max_num_tokens ({trt.max_num_tokens}) < tensorrt.max_input_len "
            f"({trt.max_input_len}) needs tensorrt.enable_chunked_context: true"
        )
    if trt.enable_chunked_context and trt.use_paged_context_fmha is False:
        errors.append(
            "tensorrt.enable_chunked_context needs paged context FMHA; remove "
            "tensorrt.use_paged_context_fmha: false"
        )
    if trt.enable_chunked_context and not trt.paged_kv_cache:
        errors.append("tensorrt.enable_chunked_context needs tensorrt.paged_kv_cache: true")
    if (
        trt.max_batch_size is not None
        and workload.batching != "dynamic"
        and workload.batch_size > trt.max_batch_size
    ):
        errors.append(
            f"workload.batch_size ({workload.batch_size}) exceeds "
            f"tensorrt.max_batch_size ({trt.max_batch_size}); the engine would queue "
            "requests, so the batch size measured would not be the one configured"
        )
    return errors


def validate_backend_config(config: ExperimentConfig, n_gpus: int | None = None) -> list[str]:
    """One-line errors (each naming the field) for settings the chosen backend cannot run.

    ``n_gpus`` is the number of GPUs the host can see (None when unknown); it is used only
    when ``runtime.gpus`` lists none. An empty list means the config is runnable as far as
    can be known without the engine.
    """
    errors = _parallel_errors(config, n_gpus)
    if config.backend == "pytorch":
        errors += _pytorch_errors(config)
    elif config.backend == "vllm":
        errors += _vllm_errors(config)
    elif config.backend == "tensorrt":
        errors += _tensorrt_errors(config)
    return errors
