"""Run-directory layout (the only channel between host and harness) and result reading."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from llem_schema.atomic import atomic_write_text
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from llem_schema.migrations import SchemaVersionError, migrate
from llem_schema.result import ExperimentResult
from llem_schema.runspec import EXPERIMENT_FILE, RESULT_FILE, RunSpec


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def new_study_id(name: str, now: datetime | None = None) -> str:
    return f"{slug(name)}-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}"


def experiment_id(index: int, config: ExperimentConfig) -> str:
    return f"e{index:03d}-{config.config_hash()[:8]}"


def run_dir(results_dir: Path, study_id: str, exp_id: str, cycle: int) -> Path:
    return results_dir / study_id / exp_id / f"cycle-{cycle}"


def write_spec(path: Path, spec: RunSpec) -> None:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path / EXPERIMENT_FILE, spec.model_dump_json(indent=2) + "\n")


def read_result(path: Path) -> ExperimentResult:
    """Load ``result.json`` (a file or a run dir) through migration + validation."""
    file = path / RESULT_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no result (the run did not finish)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        return ExperimentResult.model_validate(migrate(data, str(file)))
    except SchemaVersionError as exc:
        raise ConfigError(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{file}: invalid result at {loc}: {first['msg']}") from None
