"""Run a study as one Slurm job array: task k executes ``llem run-one <run dir k>``.

The study directory on the shared filesystem is the only channel: the submitting host
writes the manifest, the run list and the batch script; every array task updates only its
own run's ``state.json`` (no locks, no contention); status and resume rebuild the manifest
from those files and ask ``squeue`` (and ``sacct`` when accounting exists) what is still
queued. We call the Slurm CLIs directly with machine-readable flags (``--parsable``,
``--noheader --format``) rather than submitit: submitit pickles Python callables per job,
while a study must be resumable and inspectable from plain files and a shell.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pydantic import BaseModel, Field

from llem.config.loader import LoadedConfig
from llem.study import manifest as mf
from llem_schema.atomic import atomic_write_json, atomic_write_text
from llem_schema.errors import ConfigError

SLURM_DIR = "slurm"
JOBS_FILE = "jobs.json"
#: squeue states in which an array task still occupies (or will occupy) its run
ACTIVE_STATES = {
    "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED",
    "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED",
}


class SlurmError(RuntimeError):
    """A Slurm command failed; the message carries its stderr."""


class SlurmOptions(BaseModel):
    """What ``llem run --executor slurm`` passes to sbatch."""

    partition: str | None = None
    account: str | None = None
    time: str | None = Field(None, description="Per task, sbatch --time (e.g. 01:00:00).")
    gpus_per_task: int | None = Field(None, ge=0, description="0/None: no --gres request.")
    cpus_per_task: int | None = Field(None, ge=1)
    mem: str | None = None
    max_parallel: int | None = Field(None, ge=1, description="--array=...%N")
    sbatch_args: list[str] = Field(default_factory=list)
    python: str = Field(default_factory=lambda: sys.executable)
    runtime: str | None = Field(None, description="Override runtime.runtime on the nodes.")


class Submission(BaseModel):
    job_id: str
    runs_file: str
    script: str
    runs: list[str]
    submitted_at: str


class SlurmJobs(BaseModel):
    options: SlurmOptions
    submissions: list[Submission] = Field(default_factory=list)


class TaskState(BaseModel):
    job_id: str
    task: int | None
    state: str
    node: str | None = None


# -- Slurm CLIs ------------------------------------------------------------------------------
def available() -> tuple[bool, str]:
    """(sbatch usable?, why not). Cheap: asks the controller with ``sinfo`` once."""
    if shutil.which("sbatch") is None:
        return False, "sbatch not found on PATH; install Slurm client tools or use --executor local"
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True,
                             text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"sinfo failed: {exc}"
    if out.returncode != 0:
        return False, f"slurmctld not reachable: {out.stderr.strip() or out.stdout.strip()}"
    return True, ""


def _call(cmd: list[str], timeout: float = 60) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(f"{cmd[0]}: not found on PATH") from None
    if out.returncode != 0:
        raise SlurmError(f"{' '.join(cmd[:2])}...: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def parse_sbatch(stdout: str) -> str:
    """``sbatch --parsable`` prints ``jobid`` or ``jobid;cluster``."""
    line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job = line.split(";")[0].strip()
    if not job.isdigit():
        raise SlurmError(f"sbatch --parsable: unexpected output {stdout.strip()!r}")
    return job


def parse_task_id(jobid: str) -> tuple[str, int | None, list[int]]:
    """``123_4`` -> (123, 4, []); ``123_[5-7%2]`` (pending rest) -> (123, None, [5, 6, 7])."""
    if "_" not in jobid:
        return jobid, None, []
    job, _, rest = jobid.partition("_")
    if rest.isdigit():
        return job, int(rest), []
    rest = rest.strip("[]").split("%")[0]
    tasks: list[int] = []
    for part in rest.split(","):
        if "-" in part:
            a, b = part.split("-")
            tasks += range(int(a), int(b) + 1)
        elif part.isdigit():
            tasks.append(int(part))
    return job, None, tasks


def parse_squeue(stdout: str) -> list[TaskState]:
    """Lines of ``squeue --noheader --format=%i|%T|%N``; pending ranges expanded."""
    out = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        jobid, state, node = [*line.split("|"), "", ""][:3]
        job, task, pending = parse_task_id(jobid.strip())
        node = node.strip() or None
        if pending:
            out += [TaskState(job_id=job, task=t, state=state.strip(), node=node) for t in pending]
        else:
            out.append(TaskState(job_id=job, task=task, state=state.strip(), node=node))
    return out


def parse_sacct(stdout: str) -> list[TaskState]:
    """Lines of ``sacct --parsable2 --noheader --format=JobID,State,NodeList``."""
    out = []
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 3 or "." in parts[0]:  # skip job steps (123_4.batch)
            continue
        job, task, pending = parse_task_id(parts[0])
        state = parts[1].split()[0]  # "CANCELLED by 0"
        for t in pending or [task]:
            out.append(TaskState(job_id=job, task=t, state=state, node=parts[2] or None))
    return out


def queue(job_ids: list[str]) -> list[TaskState]:
    """What squeue still lists of these jobs (finished tasks vanish from squeue)."""
    if not job_ids:
        return []
    return parse_squeue(_call(["squeue", "--noheader", "--array", "--format=%i|%T|%N",
                               f"--jobs={','.join(job_ids)}"]))


def accounting(job_ids: list[str]) -> list[TaskState] | None:
    """sacct's view, or None when accounting is not configured (no slurmdbd)."""
    if not job_ids or shutil.which("sacct") is None:
        return None
    try:
        return parse_sacct(_call(["sacct", "--parsable2", "--noheader",
                                  "--format=JobID,State,NodeList", f"--jobs={','.join(job_ids)}"],
                                 timeout=20))
    except SlurmError:
        return None


# -- study submission ----------------------------------------------------------------------------
def read_jobs(study_dir: Path) -> SlurmJobs | None:
    path = study_dir / SLURM_DIR / JOBS_FILE
    if not path.exists():
        return None
    return SlurmJobs.model_validate_json(path.read_text("utf-8"))


def batch_script(study_dir: Path, runs_file: Path, options: SlurmOptions, name: str,
                 n: int) -> str:
    """The sbatch script: task k runs line k+1 of ``runs_file`` with this Python env."""
    logs = study_dir / SLURM_DIR / "logs"
    lines = ["#!/bin/bash", f"#SBATCH --job-name={shlex.quote('llem-' + name)}",
             f"#SBATCH --array=0-{n - 1}" + (f"%{options.max_parallel}"
                                            if options.max_parallel else ""),
             "#SBATCH --ntasks=1",
             f"#SBATCH --output={logs}/%A_%a.out"]
    gres = f"gpu:{options.gpus_per_task}" if options.gpus_per_task else None
    for flag, value in (("partition", options.partition), ("account", options.account),
                        ("time", options.time), ("gres", gres),
                        ("cpus-per-task", options.cpus_per_task), ("mem", options.mem)):
        if value:
            lines.append(f"#SBATCH --{flag}={value}")
    env_path = os.environ.get("PYTHONPATH")
    lines += [
        "set -euo pipefail",
        # the same Python environment as the submitting shell (shared filesystem)
        f"export PATH={shlex.quote(str(Path(options.python).parent))}:\"$PATH\"",
        *( [f"export PYTHONPATH={shlex.quote(env_path)}"] if env_path else [] ),
        f"RUN=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {shlex.quote(str(runs_file))})",
        f"exec {shlex.quote(options.python)} -m llem.cli run-one "
        f"{shlex.quote(str(study_dir))}/\"$RUN\""
        + (f" --runtime {shlex.quote(options.runtime)}" if options.runtime else ""),
        "",
    ]
    return "\n".join(lines)


def submit_runs(study_dir: Path, name: str, run_dirs: list[str], options: SlurmOptions) -> str:
    """Submit one array over ``run_dirs`` (relative to the study dir); returns the job id."""
    if not run_dirs:
        raise ConfigError(f"{study_dir}: nothing to submit (every run is done or queued)")
    study_dir = study_dir.resolve()
    sdir = study_dir / SLURM_DIR
    (sdir / "logs").mkdir(parents=True, exist_ok=True)
    jobs = read_jobs(study_dir) or SlurmJobs(options=options)
    k = len(jobs.submissions)
    runs_file = sdir / f"runs-{k}.txt"
    script = sdir / f"array-{k}.sbatch"
    atomic_write_text(runs_file, "\n".join(run_dirs) + "\n")
    atomic_write_text(script, batch_script(study_dir, runs_file, options, name, len(run_dirs)))
    job_id = parse_sbatch(_call(["sbatch", "--parsable", *options.sbatch_args, str(script)]))
    jobs.options = options
    jobs.submissions.append(Submission(job_id=job_id, runs_file=str(runs_file),
                                       script=str(script), runs=run_dirs,
                                       submitted_at=mf.now()))
    atomic_write_json(sdir / JOBS_FILE, jobs.model_dump(mode="json"))
    return job_id


def submit_study(loaded: LoadedConfig, results_dir: Path, options: SlurmOptions,
                 resume: bool = False, fresh: bool = False) -> tuple[Path, str]:
    """``llem run study.yaml --executor slurm``: write the study, submit its array."""
    from llem.study.runner import open_study, todo_entries

    ok, why = available()
    if not ok:
        raise ConfigError(f"--executor slurm: {why}")
    study_dir, manifest = open_study(loaded, results_dir, resume, fresh)
    busy = active_runs(study_dir)
    todo = [r.run_dir for r in todo_entries(manifest, loaded.study.study.max_retries)
            if r.run_dir not in busy]
    return study_dir, submit_runs(study_dir, manifest.study_id, todo, options)


def active_runs(study_dir: Path) -> dict[str, TaskState]:
    """Run dirs whose array task is still queued or running, with its task state."""
    jobs = read_jobs(study_dir)
    if jobs is None:
        return {}
    by_job = {s.job_id: s for s in jobs.submissions}
    out: dict[str, TaskState] = {}
    for t in queue(list(by_job)):
        if t.state in ACTIVE_STATES and t.task is not None and t.job_id in by_job:
            runs = by_job[t.job_id].runs
            if t.task < len(runs):
                out[runs[t.task]] = t
    return out


def resume(study_dir: Path, options: SlurmOptions | None = None) -> str:
    """Submit the runs that are neither done nor still queued/running."""
    from llem.study.runner import todo_entries

    study = mf.load_study(study_dir)
    manifest = mf.rebuild(study_dir, mf.load_manifest(study_dir))
    jobs = read_jobs(study_dir)
    opts = options or (jobs.options if jobs else SlurmOptions())
    busy = active_runs(study_dir)
    todo = [r.run_dir for r in todo_entries(manifest, study.study.max_retries)
            if r.run_dir not in busy]
    return submit_runs(study_dir, manifest.study_id, todo, opts)


def cancel(study_dir: Path) -> list[str]:
    """``scancel`` every array of the study; the tasks mark their runs failed/cancelled."""
    jobs = read_jobs(study_dir)
    if jobs is None:
        raise ConfigError(f"{study_dir}: not a Slurm study (no {SLURM_DIR}/{JOBS_FILE})")
    ids = [s.job_id for s in jobs.submissions]
    _call(["scancel", *ids])
    return ids


def wait(study_dir: Path, poll_s: float = 2.0, timeout_s: float | None = None,
         progress: bool = True) -> mf.Manifest:
    """Block until no task of the study is queued; a progress bar from the state files."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    manifest = mf.load_manifest(study_dir)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), disable=not progress) as bar:
        task = bar.add_task(manifest.study_id, total=len(manifest.runs), info="")
        while True:
            manifest = mf.rebuild(study_dir, manifest)
            c = manifest.counts()
            active = active_runs(study_dir)
            n_run = sum(1 for t in active.values() if t.state == "RUNNING")
            bar.update(task, completed=c["done"],
                       info=f"{n_run} running, {len(active) - n_run} queued, {c['failed']} failed")
            if not active:
                return mf.rebuild(study_dir, manifest)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{study_dir}: still {len(active)} task(s) in the queue")
            time.sleep(poll_s)


def status_rows(study_dir: Path) -> list[dict[str, str]]:
    """One row per run: state, attempts, Slurm task and node, message."""
    manifest = mf.rebuild(study_dir, mf.load_manifest(study_dir))
    active = active_runs(study_dir) if read_jobs(study_dir) else {}
    rows = []
    for r in sorted(manifest.runs, key=lambda r: r.position):
        t = active.get(r.run_dir)
        rows.append({
            "run": r.run_dir, "state": r.state, "attempts": str(r.attempts),
            "slurm": (f"{t.job_id}_{t.task} {t.state}" if t else (r.slurm_job or "")),
            "node": (t.node if t and t.node else (r.host or "")),
            "message": r.message or "",
        })
    return rows


def run_study_slurm(loaded: LoadedConfig, results_dir: Path, options: SlurmOptions,
                    wait_done: bool = False, resume: bool = False, fresh: bool = False) -> int:
    """What ``llem run --executor slurm`` calls; returns the process exit code."""
    from rich.console import Console

    console = Console()
    study_dir, job = submit_study(loaded, results_dir, options, resume=resume, fresh=fresh)
    console.print(f"submitted Slurm array {job} -> {study_dir}")
    console.print(f"  llem study status {study_dir}    llem study cancel {study_dir}")
    if not wait_done:
        return 0
    m = wait(study_dir)
    c = m.counts()
    console.print(f"{c['done']}/{len(m.runs)} run(s) done, {c['failed']} failed -> {study_dir}")
    return 0 if c["done"] == len(m.runs) else 1
