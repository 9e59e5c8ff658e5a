"""Inference backends, loaded lazily by name so a missing engine only matters when used."""

from __future__ import annotations

import importlib

from llem_harness.backends.base import BackendNotInstalled, InferenceBackend

_REGISTRY: dict[str, str] = {
    "pytorch": "llem_harness.backends.pytorch:PyTorchBackend",
    "vllm": "llem_harness.backends.vllm:VLLMBackend",
    "tensorrt": "llem_harness.backends.tensorrt:TensorRTBackend",
}


def get_backend_class(name: str) -> type[InferenceBackend]:
    if name not in _REGISTRY:
        raise KeyError(f"unknown backend {name!r}; choose from {sorted(_REGISTRY)}")
    module, cls = _REGISTRY[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise BackendNotInstalled(f"backend {name!r} is not available here: {exc}") from exc
    return getattr(mod, cls)
