"""Run-directory layout (the only channel between host and harness) and result reading."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from llem_schema.atomic import atomic_write_text
from llem_schema.config import ExperimentConfig
from llem_schema.result import ExperimentResult
from llem_schema.runspec import EXPERIMENT_FILE, RunSpec


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
    from llem.results.io import load_result

    return load_result(path)
