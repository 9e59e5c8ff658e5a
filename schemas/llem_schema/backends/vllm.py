"""vLLM backend section (mapped to ``vllm.EngineArgs`` / ``SamplingParams``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llem_schema.base import StrictModel


class VLLMConfig(StrictModel):
    """First-class vLLM engine options."""

    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    quantization: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    max_num_seqs: int | None = Field(None, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    kv_cache_dtype: str = "auto"
    block_size: int | None = Field(None, ge=1)
    enforce_eager: bool = False
