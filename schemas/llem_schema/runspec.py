"""The document the host writes to ``RUN_DIR/experiment.json`` before a run starts."""

from __future__ import annotations

from pydantic import Field

from llem_schema.base import StrictModel
from llem_schema.config import ExperimentConfig
from llem_schema.version import SCHEMA_VERSION, VERSION_PATTERN

EXPERIMENT_FILE = "experiment.json"
RESULT_FILE = "result.json"
TIMESERIES_FILE = "timeseries.parquet"
LOG_FILE = "harness.log"


class RunSpec(StrictModel):
    """One run = one experiment x one cycle, fully resolved by the host."""

    schema_version: str = Field(SCHEMA_VERSION, pattern=VERSION_PATTERN)
    experiment_id: str
    run_id: str
    study_id: str | None = None
    cycle: int = 0
    config: ExperimentConfig
    config_hash: str
    runtime: str = "local"
    image_ref: str | None = None
    image_digest: str | None = None
    gpus: list[int | str] = Field(default_factory=list)
    provenance: dict[str, str] = Field(
        default_factory=dict,
        description="Where each resolved config value came from: default, preset:NAME, file, "
        "cli or sweep (dotted path -> source).",
    )
