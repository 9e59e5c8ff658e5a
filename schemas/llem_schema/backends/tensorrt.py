"""TensorRT-LLM backend section (mapped to ``tensorrt_llm.LLM`` LlmArgs / BuildConfig)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llem_schema.base import StrictModel


class TensorRTConfig(StrictModel):
    """First-class TensorRT-LLM options."""

    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    quantization: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_batch_size: int | None = Field(None, ge=1)
    max_num_tokens: int | None = Field(None, ge=1)
    max_input_len: int | None = Field(None, ge=1)
    max_seq_len: int | None = Field(None, ge=1)
    kv_cache_free_gpu_memory_fraction: float = Field(0.9, gt=0.0, le=1.0)
    engine_cache_dir: str | None = None
