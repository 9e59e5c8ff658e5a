"""Backend-specific config sections, one module per engine."""

from llem_schema.backends.pytorch import PyTorchConfig
from llem_schema.backends.tensorrt import TensorRTConfig
from llem_schema.backends.vllm import VLLMConfig

__all__ = ["PyTorchConfig", "TensorRTConfig", "VLLMConfig"]
