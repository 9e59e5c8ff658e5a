"""Study state on disk: one state file per run, the manifest rebuilt from them.

Each run owns ``<run dir>/state.json`` and is the only writer of it, so concurrent
workers (several GPUs, Slurm array tasks on NFS) never contend for one file. The study's
``manifest.json`` is a derived view, rebuilt atomically from the state files; losing it
loses nothing.

A run is *done* only when its ``result.json`` validates: a study killed between the
harness writing the result and the state update resumes without repeating that run.
"""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from llem_schema.atomic import atomic_write_json, atomic_write_text
from llem_schema.runspec import RESULT_FILE
from llem_schema.study import StudyConfig
from llem_schema.version import SCHEMA_VERSION

STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
STUDY_FILE = "study.json"

#: interrupted: stopped by Ctrl+C / SIGTERM / scancel; not a failure, resume runs it again
RunState = Literal["pending", "running", "done", "failed", "interrupted"]


class RunEntry(BaseModel):
    run_id: str
    experiment_id: str
    experiment_index: int
    cycle: int
    position: int = Field(description="Order in which the study runs it.")
    run_dir: str = Field(description="Relative to the study directory.")
    state: RunState = "pending"
    attempts: int = 0
    message: str | None = None
    updated_at: str | None = None
    host: str | None = None
    slurm_job: str | None = None


class TargetStatus(BaseModel):
    """Where one configuration stands against ``study.target_ci`` (see llem.study.target)."""

    experiment_id: str
    metric: str
    target: float = Field(description="The rel_half_width asked for.")
    cycles: int = Field(description="Cycles planned and added for this configuration so far.")
    n_valid: int = Field(description="Finished cycles with a value of the metric.")
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    rel_half_width: float | None = Field(None, description="(ci_high - ci_low) / 2 / |mean|.")
    met: bool
    status: Literal["met", "adding", "max_cycles", "not_measured", "no_results"]
    note: str | None = None


class Manifest(BaseModel):
    schema_version: str = SCHEMA_VERSION
    study_id: str
    name: str
    study_hash: str
    created_at: str
    runs: list[RunEntry]
    target_ci: list[TargetStatus] = Field(
        default_factory=list, description="Per configuration, how study.target_ci stands "
        "(empty without it); the added cycles are ordinary entries of runs.")

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "running": 0, "done": 0, "failed": 0, "interrupted": 0}
        for r in self.runs:
            out[r.state] += 1
        return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def study_hash(study: StudyConfig) -> str:
    import hashlib

    blob = json.dumps(study.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_state(study_dir: Path, entry: RunEntry) -> None:
    entry.updated_at = now()
    entry.host = socket.gethostname()
    atomic_write_json(study_dir / entry.run_dir / STATE_FILE, entry.model_dump(mode="json"))


def read_state(study_dir: Path, entry: RunEntry) -> RunEntry:
    """The run's own view, corrected by what is on disk (a valid result means done)."""
    path = study_dir / entry.run_dir / STATE_FILE
    current = entry
    if path.exists():
        try:
            current = RunEntry.model_validate_json(path.read_text("utf-8"))
        except ValueError:
            current = entry  # a torn state file cannot exist (atomic), but be safe
    if current.state != "done" and (study_dir / entry.run_dir / RESULT_FILE).exists():
        from llem.study.rundir import read_result

        try:
            read_result(study_dir / entry.run_dir)
            current = current.model_copy(update={"state": "done", "message": "recovered"})
        except Exception:
            pass
    return current


def rebuild(study_dir: Path, manifest: Manifest) -> Manifest:
    """Refresh every entry from its state file and rewrite manifest.json atomically."""
    fresh = manifest.model_copy(update={"runs": [read_state(study_dir, r) for r in manifest.runs]})
    atomic_write_json(study_dir / MANIFEST_FILE, fresh.model_dump(mode="json"))
    return fresh


def load_manifest(study_dir: Path) -> Manifest:
    return Manifest.model_validate_json((study_dir / MANIFEST_FILE).read_text("utf-8"))


def create(study_dir: Path, study_id: str, study: StudyConfig, runs: list[RunEntry]) -> Manifest:
    study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(study_dir / STUDY_FILE, study.model_dump_json(indent=2) + "\n")
    m = Manifest(
        study_id=study_id,
        name=study.name,
        study_hash=study_hash(study),
        created_at=now(),
        runs=runs,
    )
    atomic_write_json(study_dir / MANIFEST_FILE, m.model_dump(mode="json"))
    return m


def load_study(study_dir: Path) -> StudyConfig:
    """The study exactly as it was started (``study.json``, written at creation)."""
    return StudyConfig.model_validate_json((study_dir / STUDY_FILE).read_text("utf-8"))


def find_entry(study_dir: Path, run_dir: Path) -> RunEntry:
    """The manifest entry (refreshed from its state file) of one run directory."""
    from llem_schema.errors import ConfigError

    rel = run_dir.resolve().relative_to(study_dir.resolve()).as_posix()
    for r in load_manifest(study_dir).runs:
        if r.run_dir == rel:
            return read_state(study_dir, r)
    raise ConfigError(f"{run_dir}: not a run of the study in {study_dir} (see manifest.json)")


def find_latest(results_dir: Path, name: str) -> Path | None:
    """Newest study directory of this name (by creation time in its manifest)."""
    from llem.study.rundir import slug

    best: tuple[str, Path] | None = None
    if not results_dir.is_dir():
        return None
    # <slug>-YYYYmmdd-HHMMSS[-n] exactly: study "ks" must not pick up "ks-big-..."
    own = re.compile(re.escape(slug(name)) + r"-\d{8}-\d{6}(-\d+)?")
    for d in results_dir.iterdir():
        mf = d / MANIFEST_FILE
        if not (d.is_dir() and own.fullmatch(d.name) and mf.exists()):
            continue
        try:
            data = json.loads(mf.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        created = data.get("created_at", "")
        if data.get("name", name) != name:
            continue
        if best is None or created > best[0]:
            best = (created, d)
    return best[1] if best else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
