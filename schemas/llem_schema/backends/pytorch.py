"""PyTorch/Transformers backend section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llem_schema.base import ConfigModel


class PyTorchConfig(ConfigModel):
    """Transformers ``from_pretrained`` + ``generate`` options that change cost."""

    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 on GPUs that support it, float32 on CPU."
    )
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        "auto", description="auto: sdpa (what from_pretrained picks), eager if sdpa unsupported."
    )
    cache_implementation: Literal["dynamic", "static"] = "dynamic"
    compile: bool = False
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "reduce-overhead"
    decode_loop: Literal["auto", "generate", "lean"] = Field(
        "auto",
        description="generate: transformers' generate(); lean: the harness's own static-cache "
        "greedy loop (prefill eager, decode step compiled, CUDA graphs with reduce-overhead) "
        "that removes generate()'s per-step Python work; auto: lean when compile is on and "
        "decoding is greedy with ignore_eos and no extra generate kwargs, else generate.",
    )
    quantization: Literal["none", "bnb-8bit", "bnb-4bit"] = "none"
    device_map: str | None = Field(
        None, description="None: the experiment's first GPU; 'auto' shards over listed GPUs."
    )
    low_cpu_mem_usage: bool = True
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _compile_needs_static(self) -> PyTorchConfig:
        if self.compile and self.cache_implementation != "static":
            raise ValueError(
                "pytorch.compile requires pytorch.cache_implementation: static "
                "(a dynamic cache recompiles every step)"
            )
        return self
