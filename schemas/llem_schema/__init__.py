"""llem_schema: the host<->container contract (pydantic v2 models, versioned).

Exports resolve lazily so that importing a light submodule (``llem_schema.exceptions``)
does not build every pydantic model: ``llem --help`` must start in well under 0.3 s.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BACKENDS": "llem_schema.config",
    "DEFAULT_MODEL": "llem_schema.config",
    "DecodingConfig": "llem_schema.config",
    "ExperimentConfig": "llem_schema.config",
    "MeasurementConfig": "llem_schema.config",
    "RuntimeConfig": "llem_schema.config",
    "TrafficConfig": "llem_schema.config",
    "WorkloadConfig": "llem_schema.config",
    "ExperimentResult": "llem_schema.result",
    "RunSpec": "llem_schema.runspec",
    "StudyConfig": "llem_schema.study",
    "StudyExecution": "llem_schema.study",
    "SCHEMA_MAJOR": "llem_schema.version",
    "SCHEMA_VERSION": "llem_schema.version",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llem_schema' has no attribute {name!r}")
