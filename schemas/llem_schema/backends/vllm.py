"""vLLM backend section (mapped to ``vllm.EngineArgs`` / ``SamplingParams``).

Field names follow vLLM's own argument names wherever one exists, so a researcher who knows
vLLM can read a config without a glossary; ``docs/parameters.md`` lists every field with the
engine argument it becomes. Anything not here can still be passed through ``extra:``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from llem_schema.base import ConfigModel

#: kv_cache_dtype values accepted by vLLM's CacheDType (vllm/config/cache.py).
VLLMKVCacheDType = Literal["auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc"]


#: Proposers that need no separate draft model (the target model or the prompt drafts).
_MODEL_FREE_METHODS = ("ngram", "ngram_gpu", "suffix")


class VLLMSpeculativeConfig(ConfigModel):
    """Speculative decoding; becomes ``EngineArgs.speculative_config`` (a dict in vLLM)."""

    method: str = Field(
        ...,
        min_length=1,
        description="SpeculativeConfig.method: ngram (prompt lookup), draft_model, eagle, eagle3, "
        "suffix, mtp, ... (vLLM's SpeculativeMethod; the engine validates the value).",
    )
    model: str | None = Field(
        None, description="Draft / EAGLE head model path; not used by ngram."
    )
    num_speculative_tokens: int = Field(..., ge=1, description="Tokens proposed per step.")
    prompt_lookup_max: int | None = Field(None, ge=1, description="ngram only: longest n-gram.")
    prompt_lookup_min: int | None = Field(None, ge=1, description="ngram only: shortest n-gram.")
    draft_tensor_parallel_size: int | None = Field(None, ge=1)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Further speculative_config keys passed verbatim (vLLM SpeculativeConfig).",
    )

    @model_validator(mode="after")
    def _needs_model(self) -> VLLMSpeculativeConfig:
        model_free = self.method in _MODEL_FREE_METHODS or self.method.endswith("mtp")
        if not model_free and not self.model:
            raise ValueError(f"vllm.speculative.model is required for method '{self.method}'")
        return self


class VLLMConfig(ConfigModel):
    """First-class vLLM engine options: the knobs that change speed, memory or energy."""

    # --- model / numerics -----------------------------------------------------------------
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto", description="EngineArgs.dtype; auto = the checkpoint's torch_dtype (fp32 -> fp16)."
    )
    quantization: str | None = Field(
        None,
        description="EngineArgs.quantization: awq, gptq, fp8, bitsandbytes, compressed-tensors, "
        "... (vLLM's QuantizationMethods). None = what the checkpoint declares.",
    )
    kv_cache_dtype: VLLMKVCacheDType = Field(
        "auto", description="EngineArgs.kv_cache_dtype; fp8 halves KV memory on Hopper/Ada."
    )
    # --- parallelism ----------------------------------------------------------------------
    tensor_parallel_size: int = Field(1, ge=1, description="EngineArgs.tensor_parallel_size.")
    pipeline_parallel_size: int = Field(1, ge=1, description="EngineArgs.pipeline_parallel_size.")
    data_parallel_size: int = Field(1, ge=1, description="EngineArgs.data_parallel_size.")
    distributed_executor_backend: Literal["mp", "ray", "uni"] | None = Field(
        None, description="EngineArgs.distributed_executor_backend; None = vLLM's choice."
    )
    disable_custom_all_reduce: bool = Field(
        False, description="Use NCCL instead of vLLM's custom all-reduce (TP > 1)."
    )
    # --- memory / KV cache ----------------------------------------------------------------
    gpu_memory_utilization: float = Field(
        0.9, gt=0.0, le=1.0, description="Fraction of GPU memory vLLM may use (weights + KV)."
    )
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1, description="Fixed KV cache size in bytes; overrides gpu_memory_utilization."
    )
    block_size: int | None = Field(None, ge=1, description="Tokens per KV cache block.")
    enable_prefix_caching: bool | None = Field(
        None, description="Automatic prefix caching; None = vLLM's default (on in V1)."
    )
    cpu_offload_gb: float = Field(0.0, ge=0.0, description="GiB of weights offloaded to CPU.")
    # --- scheduler ------------------------------------------------------------------------
    max_num_seqs: int | None = Field(None, ge=1, description="Max concurrent sequences.")
    max_num_batched_tokens: int | None = Field(
        None, ge=1, description="Token budget per scheduler step."
    )
    max_model_len: int | None = Field(
        None, ge=1, description="Context length (prompt + output); None = the model's."
    )
    enable_chunked_prefill: bool | None = Field(
        None, description="Split long prefills across steps; None = vLLM's default."
    )
    scheduling_policy: Literal["fcfs", "priority"] | None = Field(None)
    async_scheduling: bool | None = Field(
        None, description="Overlap CPU scheduling with GPU execution (vLLM V1)."
    )
    # --- execution mode -------------------------------------------------------------------
    enforce_eager: bool = Field(
        False, description="Disable CUDA graphs (and torch.compile); slower, less memory."
    )
    compilation_config: int | dict[str, Any] | None = Field(
        None,
        description="EngineArgs.compilation_config: an optimisation level (0-3) or a dict "
        "(cudagraph_mode, cudagraph_capture_sizes, ...).",
    )
    max_cudagraph_capture_size: int | None = Field(None, ge=1)
    # --- speculative decoding ---------------------------------------------------------------
    speculative: VLLMSpeculativeConfig | None = None
    # --- sampling knobs with no cross-backend equivalent in ``decoding:`` -------------------
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="SamplingParams.")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="SamplingParams.")
    n: int = Field(1, ge=1, description="SamplingParams.n: completions per prompt.")
    seed: int | None = Field(
        None, description="EngineArgs.seed; None = decoding.seed (the same seed everywhere)."
    )
    trust_remote_code: bool = False
