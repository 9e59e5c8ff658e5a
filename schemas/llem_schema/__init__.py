"""llem_schema: the host<->container contract (pydantic v2 models, versioned)."""

from llem_schema.config import (
    BACKENDS,
    DEFAULT_MODEL,
    DecodingConfig,
    ExperimentConfig,
    MeasurementConfig,
    RuntimeConfig,
    TrafficConfig,
    WorkloadConfig,
)
from llem_schema.result import ExperimentResult
from llem_schema.runspec import RunSpec
from llem_schema.study import StudyConfig, StudyExecution
from llem_schema.version import SCHEMA_MAJOR, SCHEMA_VERSION

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "SCHEMA_MAJOR",
    "SCHEMA_VERSION",
    "DecodingConfig",
    "ExperimentConfig",
    "ExperimentResult",
    "MeasurementConfig",
    "RunSpec",
    "RuntimeConfig",
    "StudyConfig",
    "StudyExecution",
    "TrafficConfig",
    "WorkloadConfig",
]
