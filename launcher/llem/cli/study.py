"""``llem study status|cancel|resume STUDY_DIR``: inspect and steer a study directory.

Works for local studies and Slurm studies alike: the per-run state files are the truth;
for Slurm studies (``slurm/jobs.json`` exists) the queue is asked as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llem.cli.app import command_group

app = command_group("Inspect, cancel and resume a study directory.")

StudyDir = Annotated[Path, typer.Argument(help="results/<study-id>")]


def _check(study_dir: Path) -> Path:
    from llem.study import manifest as mf
    from llem_schema.errors import ConfigError

    if not ((study_dir / mf.MANIFEST_FILE).exists() or (study_dir / mf.STUDY_FILE).is_file()):
        raise ConfigError(f"{study_dir}: no {mf.MANIFEST_FILE}; pass a results/<study-id> dir")
    readable_manifest(study_dir)
    return study_dir.resolve()


def readable_manifest(study_dir: Path) -> None:
    """manifest.json is a snapshot of the runs' own state files and the journal. A damaged
    or deleted one (a copy cut short, a hand edit, an rm) is rebuilt from study.json and
    the run directories, said in one line on stderr, instead of stopping the command: no
    finished run is lost with it."""
    from llem.study import manifest as mf
    from llem_schema.errors import ConfigError

    path = study_dir / mf.MANIFEST_FILE
    try:
        mf.load_manifest(study_dir)
        return
    except (OSError, ValueError) as exc:
        why = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
    try:
        mf.recover(study_dir)
    except (OSError, ValueError):
        raise ConfigError(f"{path}: {why}, and so is {study_dir / mf.STUDY_FILE}; the "
                          f"results are untouched: llem results show {study_dir}") from None
    typer.echo(f"note: {path} was {why}; rebuilt from {mf.STUDY_FILE} and the run "
               "directories", err=True)


def repair_manifests(results_dir: Path, name: str) -> None:
    """Rebuild the damaged or deleted manifests of studies called ``name`` under
    ``results_dir``, so ``llem run --resume`` finds the study instead of skipping it."""
    from llem.study import manifest as mf

    if not results_dir.is_dir():
        return
    for d in results_dir.iterdir():
        if not (d / mf.STUDY_FILE).is_file():
            continue
        try:
            mf.load_manifest(d)
            continue
        except (OSError, ValueError):
            pass
        try:
            if mf.load_study(d).name != name:
                continue
        except (OSError, ValueError):
            continue
        readable_manifest(d)


def recheck_finished(study_dir: Path, write: bool = True) -> dict[str, str]:
    """Runs counted done whose result.json is damaged since (cut short by a full disk,
    edited, deleted: its checksum in the run state no longer matches): run dir -> why.
    ``write``: set them back to pending in their state files, so a resume runs them again;
    the damaged file stays for inspection. The study runner trusts a done state without
    re-reading the result, which is right after each run but not before resuming."""
    from llem.study import manifest as mf

    damaged: dict[str, str] = {}
    for entry in mf.load_manifest(study_dir).runs:
        current = mf.read_state(study_dir, entry)
        if current.state != "done":
            continue
        problem = mf.result_problem(study_dir / entry.run_dir, current)
        if problem:
            damaged[entry.run_dir] = problem
            if write:
                mf.write_state(study_dir, current.model_copy(update={
                    "state": "pending",
                    "message": f"finished, but its result is damaged: {problem}"}))
    return damaged


@app.command()
def status(
    study_dir: StudyDir,
    runs: Annotated[bool, typer.Option("--runs", help="One line per run.")] = False,
) -> None:
    """Counts of done/failed/running/pending runs (and Slurm queue state)."""
    from rich.console import Console
    from rich.table import Table

    from llem.executors import slurm

    study_dir = _check(study_dir)
    damaged = recheck_finished(study_dir, write=False)
    rows = slurm.status_rows(study_dir)
    for r in rows:
        if r["run"] in damaged:
            r.update(state="pending", message=f"damaged result: {damaged[r['run']]}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    queued = sum(1 for r in rows if r["slurm"].endswith(("PENDING", "RUNNING")))
    jobs = slurm.read_jobs(study_dir)
    console = Console()
    console.print(
        f"[bold]{study_dir.name}[/]: {len(rows)} run(s): "
        + ", ".join(f"{counts.get(k, 0)} {k}"
                    for k in ("done", "running", "failed", "interrupted", "pending"))
        + (f"; slurm jobs {', '.join(s.job_id for s in jobs.submissions)}, {queued} in queue"
           if jobs else "")
    )
    if runs:
        table = Table()
        for col in ("run", "state", "attempts", "slurm", "node", "message"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(r[c] for c in ("run", "state", "attempts", "slurm", "node",
                                           "message")))
        console.print(table)
    if damaged:
        console.print(f"[yellow]{len(damaged)} finished run(s) have a damaged result.json[/] "
                      f"and count as pending (resume runs them again): "
                      + "; ".join(damaged.values()), soft_wrap=True)


@app.command()
def cancel(study_dir: StudyDir) -> None:
    """scancel the study's Slurm arrays (resume later with `llem study resume`)."""
    from llem.executors import slurm

    ids = slurm.cancel(_check(study_dir))
    typer.echo(f"cancelled Slurm job(s) {', '.join(ids)}")


@app.command()
def resume(
    study_dir: StudyDir,
    wait: Annotated[bool, typer.Option("--wait", help="Block with a progress bar.")] = False,
    partition: Annotated[str | None, typer.Option(help="Override sbatch --partition.")] = None,
    max_parallel: Annotated[int | None, typer.Option(help="Override --array %N.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run what is not done: a new Slurm array (Slurm study) or locally (local study)."""
    from llem.executors import slurm
    from llem.study import manifest as mf

    study_dir = _check(study_dir)
    recheck_finished(study_dir)
    jobs = slurm.read_jobs(study_dir)
    if jobs is not None:
        opts = jobs.options.model_copy()
        if partition:
            opts.partition = partition
        if max_parallel:
            opts.max_parallel = max_parallel
        job = slurm.resume(study_dir, opts)
        typer.echo(f"submitted Slurm array {job} for {study_dir}")
        if wait:
            m = slurm.wait(study_dir)
            c = m.counts()
            typer.echo(f"{c['done']}/{len(m.runs)} run(s) done, {c['failed']} failed")
            raise typer.Exit(0 if c["done"] == len(m.runs) else 1)
        return
    from llem.config.loader import LoadedConfig
    from llem.study.runner import run_study

    study = mf.load_study(study_dir)
    loaded = LoadedConfig(study=study, is_study=True, source=str(study_dir / mf.STUDY_FILE))
    raise typer.Exit(run_study(loaded, study_dir.parent, quiet=quiet, study_dir=study_dir))
