"""TensorRT-LLM backend section (mapped to ``tensorrt_llm`` LLM API: LlmArgs / BuildConfig).

The TensorRT engine path is what this backend measures: a model is compiled into an engine
with a ``BuildConfig`` (limits are baked in at build time), then served by the C++ executor.
Field names follow TensorRT-LLM's where one exists; ``docs/parameters.md`` maps each field
to the engine argument it becomes (top-level LlmArgs, ``build_config``, ``kv_cache_config``,
``quant_config`` or ``extended_runtime_perf_knob_config``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llem_schema.base import ConfigModel

#: Weight quantization presets -> QuantConfig.quant_algo (tensorrt_llm.quantization.QuantAlgo).
TRT_QUANT_ALGOS: dict[str, str | None] = {
    "none": None,
    "fp8": "FP8",
    "int8_weight_only": "W8A16",
    "int4_weight_only": "W4A16",
    "int4_awq": "W4A16_AWQ",
    "int8_smoothquant": "W8A8_SQ_PER_CHANNEL",
    "nvfp4": "NVFP4",
}

#: KV cache dtype -> QuantConfig.kv_cache_quant_algo (the TRT engine path's only KV knob).
TRT_KV_CACHE_ALGOS: dict[str, str | None] = {"auto": None, "fp8": "FP8", "int8": "INT8"}


class TensorRTConfig(ConfigModel):
    """First-class TensorRT-LLM options: the knobs that change speed, memory or energy."""

    # --- model / numerics -----------------------------------------------------------------
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto", description="LlmArgs.dtype: activation / weight dtype of the engine."
    )
    quantization: Literal[
        "none", "fp8", "int8_weight_only", "int4_weight_only", "int4_awq", "int8_smoothquant",
        "nvfp4"
    ] | None = Field(
        None,
        description="QuantConfig.quant_algo preset (fp8 -> FP8, int8_weight_only -> W8A16, "
        "int4_weight_only -> W4A16, int4_awq -> W4A16_AWQ, ...). None/none = unquantized "
        "(or what a pre-quantized checkpoint declares).",
    )
    quant_group_size: int | None = Field(
        None, ge=1, description="QuantConfig.group_size for AWQ / group-wise int4 (default 128)."
    )
    kv_cache_dtype: Literal["auto", "fp8", "int8"] = Field(
        "auto", description="QuantConfig.kv_cache_quant_algo (TRT engines quantize KV this way)."
    )
    # --- parallelism ----------------------------------------------------------------------
    tensor_parallel_size: int = Field(1, ge=1, description="LlmArgs.tensor_parallel_size.")
    pipeline_parallel_size: int = Field(1, ge=1, description="LlmArgs.pipeline_parallel_size.")
    # --- build-time limits (BuildConfig) --------------------------------------------------
    max_batch_size: int | None = Field(None, ge=1, description="BuildConfig.max_batch_size.")
    max_num_tokens: int | None = Field(
        None, ge=1, description="BuildConfig.max_num_tokens: tokens per engine step."
    )
    opt_num_tokens: int | None = Field(
        None, ge=1, description="BuildConfig.opt_num_tokens: the shape TensorRT tunes for."
    )
    max_input_len: int | None = Field(None, ge=1, description="BuildConfig.max_input_len.")
    max_seq_len: int | None = Field(
        None, ge=1, description="BuildConfig.max_seq_len: prompt + output tokens."
    )
    max_beam_width: int | None = Field(
        None, ge=1, description="BuildConfig.max_beam_width; None = decoding.num_beams."
    )
    paged_kv_cache: bool = Field(
        True, description="BuildConfig.kv_cache_type PAGED (True) or CONTINUOUS (False)."
    )
    use_paged_context_fmha: bool | None = Field(
        None,
        description="plugin_config.use_paged_context_fmha; None = on when chunked context or "
        "KV block reuse needs it.",
    )
    use_fp8_context_fmha: bool | None = Field(
        None, description="plugin_config.use_fp8_context_fmha: FP8 attention in prefill (FP8)."
    )
    multiple_profiles: bool = Field(
        False, description="plugin_config.multiple_profiles: several TensorRT profiles."
    )
    fast_build: bool = Field(False, description="LlmArgs.fast_build: faster, less-tuned build.")
    # --- runtime: KV cache ----------------------------------------------------------------
    kv_cache_free_gpu_memory_fraction: float = Field(
        0.9, gt=0.0, le=1.0, description="KvCacheConfig.free_gpu_memory_fraction."
    )
    kv_cache_max_tokens: int | None = Field(
        None, ge=1, description="KvCacheConfig.max_tokens: cap on KV cache tokens."
    )
    tokens_per_block: int | None = Field(
        None, ge=1, description="KvCacheConfig.tokens_per_block (power of two)."
    )
    enable_block_reuse: bool = Field(
        False,
        description="KvCacheConfig.enable_block_reuse (prefix caching). Off by default so "
        "repeated measured runs do not get faster by reusing earlier runs' KV blocks.",
    )
    # --- runtime: scheduler / execution ---------------------------------------------------
    enable_chunked_context: bool = Field(
        False, description="LlmArgs.enable_chunked_prefill (needs paged context FMHA)."
    )
    capacity_scheduler_policy: Literal[
        "GUARANTEED_NO_EVICT", "MAX_UTILIZATION", "STATIC_BATCH"
    ] | None = Field(None, description="scheduler_config.capacity_scheduler_policy.")
    context_chunking_policy: Literal["FIRST_COME_FIRST_SERVED", "EQUAL_PROGRESS"] | None = Field(
        None, description="scheduler_config.context_chunking_policy (with chunked context)."
    )
    cuda_graphs: bool = Field(
        False, description="extended_runtime_perf_knob_config.cuda_graph_mode."
    )
    cuda_graph_cache_size: int | None = Field(
        None, ge=0, description="extended_runtime_perf_knob_config.cuda_graph_cache_size."
    )
    multi_block_mode: bool | None = Field(
        None, description="extended_runtime_perf_knob_config.multi_block_mode (decode attention)."
    )
    # --- engine cache ---------------------------------------------------------------------
    engine_cache_dir: str | None = Field(
        None,
        description="Where built engines are kept and reused across a study, keyed by a hash of "
        "model + build settings. None = $LLEM_ENGINE_CACHE or <run dir>/../engines.",
    )
    # --- sampling knobs with no cross-backend equivalent in ``decoding:`` -------------------
    presence_penalty: float = Field(0.0, description="SamplingParams.presence_penalty.")
    frequency_penalty: float = Field(0.0, description="SamplingParams.frequency_penalty.")
    length_penalty: float | None = Field(None, description="SamplingParams (beam search).")
    n: int = Field(1, ge=1, description="SamplingParams.n: completions per prompt.")
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _lengths(self) -> TensorRTConfig:
        if (
            self.max_input_len is not None
            and self.max_seq_len is not None
            and self.max_input_len > self.max_seq_len
        ):
            raise ValueError("tensorrt.max_input_len must be <= tensorrt.max_seq_len")
        if self.quant_group_size is not None and self.quantization not in (
            "int4_awq", "int4_weight_only"
        ):
            raise ValueError("tensorrt.quant_group_size only applies to int4 quantization")
        return self
