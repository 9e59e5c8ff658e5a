"""Study state on disk: one state file per run, an append-only journal, a snapshot.

Each run owns ``<run dir>/state.json`` and is the only writer of it, so concurrent
workers (several GPUs, Slurm array tasks on NFS) never contend for one file. Every state
change is also appended to the study's ``journal.jsonl`` (one JSON line, fsync'd): O(1)
bytes per change, whatever the size of the study. ``manifest.json`` is a snapshot; the
current view is the snapshot with the journal replayed (:func:`load_manifest`). The journal
is folded into the snapshot at the end of each pass, at the end of the study and on
resume (:func:`rebuild`), never after each run. Losing the snapshot or the journal loses
nothing: :func:`recover` rebuilds both from ``study.json`` and the run directories.

A run is *done* only when its ``result.json`` validates: a study killed between the
harness writing the result and the state update resumes without repeating that run. A
done run's state carries the sha256 of its result; on resume a result that no longer
matches (cut short, overwritten, deleted) sets the run back to pending, so it runs again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import time
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
JOURNAL_FILE = "journal.jsonl"

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
    result_sha256: str | None = Field(
        None, description="sha256 of result.json, taken when the run finished: a result "
        "changed or cut short since does not count as done.")


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
    blob = json.dumps(study.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------- one run's state


def result_checksum(run_dir: Path) -> str | None:
    """sha256 of the run's ``result.json``; None when there is none to read."""
    h = hashlib.sha256()
    try:
        with open(run_dir / RESULT_FILE, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def write_state(study_dir: Path, entry: RunEntry) -> None:
    """The run's state file (atomic) and one journal line: O(1), whatever the study size.
    A run marked done gets the checksum of its result."""
    entry.updated_at = now()
    entry.host = socket.gethostname()
    if entry.state != "done":
        entry.result_sha256 = None
    elif entry.result_sha256 is None:
        entry.result_sha256 = result_checksum(study_dir / entry.run_dir)
    data = entry.model_dump(mode="json")
    atomic_write_json(study_dir / entry.run_dir / STATE_FILE, data)
    append_journal(study_dir, data)


def append_journal(study_dir: Path, data: dict[str, object]) -> None:
    """One line, appended and fsync'd. A crash mid-append leaves at most a torn last line,
    which :func:`read_journal` skips (the run's state file holds the same change)."""
    line = (json.dumps(data, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(study_dir / JOURNAL_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(study_dir / JOURNAL_FILE)) from exc
    finally:
        os.close(fd)


def read_journal(study_dir: Path) -> list[RunEntry]:
    """The journal's entries in the order they were written; unreadable lines skipped."""
    try:
        raw = (study_dir / JOURNAL_FILE).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for line in raw.split(b"\n"):
        if line.strip():
            try:
                out.append(RunEntry.model_validate_json(line))
            except ValueError:
                continue
    return out


def result_problem(run_dir: Path, entry: RunEntry) -> str | None:
    """Why a run counted done no longer is (None: its result is the one it finished with):
    result.json missing, not matching the checksum taken then, or (a state written before
    checksums) no longer valid."""
    from llem.study.rundir import read_result
    from llem_schema.errors import ConfigError

    path = run_dir / RESULT_FILE
    if not path.is_file():
        return f"{path}: missing"
    if entry.result_sha256 is not None and result_checksum(run_dir) == entry.result_sha256:
        return None
    try:
        read_result(run_dir)
    except ConfigError as exc:
        return str(exc)
    if entry.result_sha256 is None:
        return None
    return f"{path}: changed since the run finished (checksum mismatch)"


def read_state(study_dir: Path, entry: RunEntry, verify: bool = False) -> RunEntry:
    """The run's own view, corrected by what is on disk: a valid result of a run not marked
    done means done (a kill between the two); ``verify``: a done run whose result is damaged
    (:func:`result_problem`) is pending again."""
    return _read_state(study_dir, entry, verify)[0]


def _read_state(study_dir: Path, entry: RunEntry, verify: bool) -> tuple[RunEntry, bool]:
    """(the run's view, whether the run directory corrected its state file)."""
    run_dir = study_dir / entry.run_dir
    path = run_dir / STATE_FILE
    current = entry
    if path.exists():
        try:
            current = RunEntry.model_validate_json(path.read_text("utf-8"))
        except (OSError, ValueError):
            current = entry  # a torn state file cannot exist (atomic), but be safe
    if current.state == "done":
        problem = result_problem(run_dir, current) if verify else None
        if problem:
            return current.model_copy(update={
                "state": "pending", "result_sha256": None,
                "message": f"finished, but its result is damaged: {problem}"}), True
    elif (run_dir / RESULT_FILE).exists():
        from llem.study.rundir import read_result

        try:
            read_result(run_dir)
        except Exception:
            return current, False
        return current.model_copy(update={
            "state": "done", "message": "recovered",
            "result_sha256": result_checksum(run_dir)}), True
    return current, False


# ------------------------------------------------------------------------ the whole study


def _replay(manifest: Manifest, lines: list[RunEntry]) -> Manifest:
    """The snapshot with the journal applied: per run the last line wins, unless the
    snapshot's entry is newer (a correction :func:`rebuild` made from the run directory
    without a state write); runs the snapshot lacks (cycles added by study.target_ci) are
    appended."""
    if not lines:
        return manifest
    runs = list(manifest.runs)
    index = {r.run_dir: i for i, r in enumerate(runs)}
    from_snapshot = set(index)
    for line in lines:
        i = index.get(line.run_dir)
        if i is None:
            index[line.run_dir] = len(runs)
            runs.append(line)
            continue
        if line.run_dir in from_snapshot:
            if (line.updated_at or "") <= (runs[i].updated_at or ""):
                continue
            from_snapshot.discard(line.run_dir)
        runs[i] = line
    return manifest.model_copy(update={"runs": runs})


def load_manifest(study_dir: Path) -> Manifest:
    """The current view: the snapshot with the journal replayed. Raises OSError/ValueError
    when the snapshot is missing or damaged (:func:`recover` rebuilds it)."""
    snapshot = Manifest.model_validate_json((study_dir / MANIFEST_FILE).read_text("utf-8"))
    return _replay(snapshot, read_journal(study_dir))


def rebuild(study_dir: Path, manifest: Manifest, verify: bool = False) -> Manifest:
    """Refresh every entry from its run directory, write the snapshot and fold the journal
    into it (O(runs): at the end of a pass, of the study, on resume and for status, never
    per run). ``verify``: damaged results count as not done, and every correction is
    written to its run's state (resume). Where the study cannot be written (a read-only
    copy) the fresh view is returned all the same."""
    size = _journal_size(study_dir)
    current = _replay(manifest, read_journal(study_dir)) if size else manifest
    runs = []
    for r in current.runs:
        fresh, corrected = _read_state(study_dir, r, verify)
        if corrected and verify:
            write_state(study_dir, fresh)
        runs.append(fresh)
    current = current.model_copy(update={"runs": runs})
    try:
        atomic_write_json(study_dir / MANIFEST_FILE, current.model_dump(mode="json"))
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC,
                             errno.EDQUOT):
            raise
        return current  # a view: what it would say is returned, the journal still holds it
    _fold_journal(study_dir, size)
    _remove_stale_temporaries(study_dir)
    return current


def _journal_size(study_dir: Path) -> int:
    try:
        return (study_dir / JOURNAL_FILE).stat().st_size
    except OSError:
        return 0


def _fold_journal(study_dir: Path, size: int) -> None:
    """Empty the journal now that the snapshot holds it, unless it grew meanwhile or another
    live llem holds the study (it may be appending: its lines are then left, and replayed
    over the snapshot harmlessly, as the state files are the truth)."""
    if not size or _journal_size(study_dir) != size or _held_by_another(study_dir):
        return
    try:
        os.truncate(study_dir / JOURNAL_FILE, 0)
    except OSError:
        pass


def _held_by_another(study_dir: Path) -> bool:
    from llem.study.lock import LOCK_FILE

    try:
        pid = int((study_dir / LOCK_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    return pid > 0 and pid != os.getpid() and pid_alive(pid)


def _remove_stale_temporaries(study_dir: Path, age_s: float = 300.0) -> None:
    """``.manifest.json.*.tmp`` left by a process killed mid-write (SIGKILL, power loss);
    young ones may be another process's write in progress and are left."""
    cutoff = time.time() - age_s
    for tmp in study_dir.glob(f".{MANIFEST_FILE}.*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            pass


def create(study_dir: Path, study_id: str, study: StudyConfig, runs: list[RunEntry]) -> Manifest:
    """A new study directory with ``study.json`` and the first snapshot, made whole or not
    at all: both files are written into a hidden sibling (``.<id>.<pid>.creating``) that is
    renamed into place, so a launcher killed while creating (SIGKILL, power loss) or failing
    to write (a full or read-only disk) leaves no half-made study for ``--resume`` to pick
    or trip over. Siblings abandoned by dead launchers are swept first."""
    import shutil

    m = Manifest(
        study_id=study_id,
        name=study.name,
        study_hash=study_hash(study),
        created_at=now(),
        runs=runs,
    )
    parent = study_dir.parent
    if parent.exists() and not parent.is_dir():  # mkdir would say "File exists"
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent))
    parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned_creations(parent)
    tmp = parent / f".{study_dir.name}.{os.getpid()}.creating"
    try:
        tmp.mkdir()
        atomic_write_text(tmp / STUDY_FILE, study.model_dump_json(indent=2) + "\n")
        atomic_write_json(tmp / MANIFEST_FILE, m.model_dump(mode="json"))
        os.rename(tmp, study_dir)  # fails if study_dir exists: never merged into another
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return m


def _sweep_abandoned_creations(parent: Path) -> None:
    """Remove ``.<id>.<pid>.creating`` directories whose launcher is no longer alive."""
    import shutil

    for d in parent.glob(".*.creating"):
        try:
            pid = int(d.name.rsplit(".", 2)[-2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def recover(study_dir: Path) -> Manifest:
    """The manifest rebuilt from the run directories when ``manifest.json`` is damaged or
    deleted: the runs planned by ``study.json``, any later ones found on disk (cycles added
    by study.target_ci), each refreshed from its state file and result. Raises OSError or
    ValueError when ``study.json`` is unreadable too."""
    from llem.config.loader import LoadedConfig
    from llem.study.runner import plan_runs

    study = load_study(study_dir)
    created = datetime.fromtimestamp((study_dir / STUDY_FILE).stat().st_mtime,
                                     timezone.utc).isoformat()
    runs = plan_runs(LoadedConfig(study=study, is_study=True,
                                  source=str(study_dir / STUDY_FILE)))
    known = {r.run_dir for r in runs}
    for path in sorted(study_dir.glob(f"*/cycle-*/{STATE_FILE}")):
        try:
            entry = RunEntry.model_validate_json(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if entry.run_dir not in known:
            known.add(entry.run_dir)
            runs.append(entry)
    m = Manifest(study_id=study_dir.name, name=study.name, study_hash=study_hash(study),
                 created_at=created, runs=runs)
    return rebuild(study_dir, m)


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
