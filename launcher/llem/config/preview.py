"""Engine-argument preview for ``--dry-run`` from the pure engine mapping modules."""

from __future__ import annotations

import importlib
from typing import Any

from llem_schema.config import ExperimentConfig

_PREVIEW = {
    "vllm": "llem_harness.backends.vllm_mapping:describe_engine_args",
    "tensorrt": "llem_harness.backends.tensorrt_mapping:describe_engine_args",
}


def engine_preview(config: ExperimentConfig) -> dict[str, Any] | None:
    """The engine arguments a backend would be called with, if its mapping is importable."""
    target = _PREVIEW.get(config.backend)
    if target is None:
        return None
    module, fn = target.split(":")
    try:
        return getattr(importlib.import_module(module), fn)(config)
    except (ImportError, AttributeError):
        return None
