"""``llem run-one RUN_DIR``: execute one run of an existing study directory.

What a Slurm array task calls (and usable by hand to redo one run). It reads the study as
it was started (``study.json``), updates only this run's ``state.json`` (lock-free: one
writer per run), picks a runtime this node can use (docker, else podman, else local) and
the GPUs the scheduler assigned, and never repeats a run whose result already validates.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from llem.runtimes.base import Runtime


NODES_DIR = ".nodes"


def assigned_gpus(runtime: str, env: dict[str, str] | None = None) -> list[int | str] | None:
    """GPUs the scheduler gave this task; None when it said nothing.

    A local harness inherits the task's ``CUDA_VISIBLE_DEVICES`` (Slurm's numbering inside
    the task's cgroup); a container runtime talks to a daemon that sees every GPU of the
    node, so it needs the physical ids of ``SLURM_STEP_GPUS``/``SLURM_JOB_GPUS``.
    """
    env = dict(os.environ) if env is None else env
    keys = ["CUDA_VISIBLE_DEVICES"] if runtime == "local" else [
        "SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"]
    for k in keys:
        v = env.get(k, "").strip()
        if v and v != "NoDevFiles":
            return [int(g) if g.isdigit() else g for g in v.split(",") if g]
    return None


def pick_runtime(name: str, backend: str, **options: object) -> Runtime:
    """Per node: the configured runtime; ``auto``/``docker`` fall back to podman (same
    images) when no Docker daemon answers, ``auto`` then to local."""
    from llem.runtimes.base import RuntimeUnavailable
    from llem.study.execute import make_runtime
    from llem_schema.errors import ConfigError

    if name == "local":
        from llem.runtimes.local import LocalRuntime

        # LLEM_HARNESS_PYTHON: the harness may live in another env than the launcher
        return LocalRuntime(python=os.environ.get("LLEM_HARNESS_PYTHON") or None)
    try:
        return make_runtime("docker", backend=backend, **options)
    except (RuntimeUnavailable, ConfigError) as docker_why:
        from llem.runtimes import podman

        ok, why = podman.PodmanRuntime.available()
        if ok:
            return podman.PodmanRuntime(image=options.get("image"))  # type: ignore[arg-type]
        if name == "auto":
            return pick_runtime("local", backend)
        raise RuntimeUnavailable(f"{docker_why}; podman: {why}") from None


def node_image_once(study_dir: Path, runtime: Runtime, image: str | None) -> None:
    """Pull the image once per node: the first task on a node pulls under a lock file in
    the study dir, the others wait for it and find the marker."""
    ensure = getattr(runtime, "ensure_image", None)
    if ensure is None or runtime.name == "local":
        return
    d = study_dir / NODES_DIR
    d.mkdir(exist_ok=True)
    host = socket.gethostname()
    marker = d / f"{host}.pulled"
    with open(d / f"{host}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = marker.read_text().splitlines() if marker.exists() else []
        key = image or "default"
        if key not in done:
            ensure(image)
            marker.write_text("\n".join([*done, key]) + "\n")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # scancel sends SIGTERM: let the runtime stop the harness


def run_one_dir(run_dir: Path, runtime_name: str | None = None, quiet: bool = False,
                runtime: Runtime | None = None) -> int:
    from llem.study import manifest as mf
    from llem.study.execute import execute
    from llem_schema.errors import ConfigError
    from llem_schema.exit_codes import ExitCode
    from llem_schema.study import expand_experiments

    run_dir = run_dir.resolve()
    study_dir = run_dir.parent.parent
    if not (study_dir / mf.MANIFEST_FILE).exists():
        raise ConfigError(f"{run_dir}: no {mf.MANIFEST_FILE} two levels up; pass a run "
                          "directory of a study (STUDY/EXPERIMENT/cycle-K)")
    entry = mf.find_entry(study_dir, run_dir)
    if entry.state == "done":
        typer.echo(f"{entry.run_id}: already done")
        return 0
    study = mf.load_study(study_dir)
    cfg = expand_experiments(study)[entry.experiment_index]
    name = runtime_name or cfg.runtime.runtime
    if runtime is None:
        runtime = pick_runtime(name, cfg.backend, image=cfg.runtime.image,
                               registry=cfg.runtime.registry,
                               pull_policy=cfg.runtime.pull_policy)
    gpus = assigned_gpus(runtime.name)
    from llem.study.interrupts import mark_interrupted
    from llem.study.runner import make_spec

    manifest = mf.load_manifest(study_dir)
    spec = make_spec(manifest, entry, cfg, runtime.name,
                     list(cfg.runtime.gpus) if gpus is None else gpus)
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    entry.slurm_job = (f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID')}" if array
                       else os.environ.get("SLURM_JOB_ID"))
    entry.state, entry.message = "running", None
    entry.attempts += 1
    mf.write_state(study_dir, entry)
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        node_image_once(study_dir, runtime, cfg.runtime.image)
        report = execute(runtime, spec, run_dir, quiet=quiet)
    except KeyboardInterrupt:
        runtime.cleanup()
        mark_interrupted(entry)
        mf.write_state(study_dir, entry)
        return int(ExitCode.INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, old)
    if report.outcome.interrupted and not report.ok:
        mark_interrupted(entry)
    else:
        entry.state = "done" if report.ok else "failed"
        entry.message = None if report.ok else report.message
    mf.write_state(study_dir, entry)
    typer.echo(f"{entry.run_id}: {entry.state} ({report.message})")
    return 0 if report.ok else (report.outcome.exit_code or 1)


def run_one(
    run_dir: Annotated[Path, typer.Argument(help="STUDY_DIR/EXPERIMENT/cycle-K")],
    runtime: Annotated[str | None, typer.Option(help="auto | local | docker")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide harness logs.")] = False,
) -> None:
    """Execute one run of a study directory (what each Slurm array task calls)."""
    raise typer.Exit(run_one_dir(run_dir, runtime, quiet))
