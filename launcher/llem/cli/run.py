"""``llem run``: parse the flags into config overrides and hand the study to llem.study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llem.cli.app import UserError, overrides


def short_names(paths: list[str]) -> list[str]:
    """The shortest dotted suffix that tells each swept path apart ("batch_size" for
    ``workload.batch_size``, "vllm.dtype" beside "pytorch.dtype"): full dotted paths as
    headers cannot be broken at a word and were cut to "workload.bat…" at 80 columns."""
    names = []
    for p in paths:
        parts = p.split(".")
        for k in range(1, len(parts) + 1):
            tail = ".".join(parts[-k:])
            if sum(q == tail or q.endswith("." + tail) for q in paths) == 1:
                break
        names.append(tail)
    return names


def dry_run_table(study: Any, width: int) -> tuple[Any, list[str], list[Any]]:
    """(table, headers left out for width, the experiments) of a dry run. Each row is
    named by the experiment id its results directory will have."""
    from llem.results.display import Col, fit_table
    from llem.study.rundir import experiment_id
    from llem_schema.study import expand_experiments

    experiments = expand_experiments(study)
    swept = list(study.sweep)
    cols = [Col("experiment"), Col("backend", drop=2), Col("model", fold=True)]
    cols += [Col(n) for n in short_names(swept)] + [Col("config hash", drop=1)]
    rows = []
    for i, exp in enumerate(experiments):
        data = exp.model_dump()
        vals = []
        for p in swept:
            node = data
            for part in p.split("."):
                node = node[part]
            vals.append(str(node))
        rows.append([experiment_id(i, exp), exp.backend, exp.model, *vals, exp.config_hash()])
    cycles = study.study.cycles
    shortened = [p for p, n in zip(swept, short_names(swept)) if p != n]
    table, hidden = fit_table(
        cols, rows, width,
        title=f"{study.name}: {len(experiments)} experiment(s) x {cycles} cycle(s) "
              f"= {len(experiments) * cycles} run(s), order {study.study.order}",
        caption=f"swept: {', '.join(swept)}" if shortened else None)
    return table, hidden, experiments


def print_dry_run(study: Any, console: Any) -> None:
    """List the expanded experiments (and engine arguments of the first), run nothing."""
    from llem.config.preview import engine_preview
    from llem.results.display import hidden_note

    table, hidden, experiments = dry_run_table(study, console.width)
    console.print(table)
    note = hidden_note(hidden, console.width)
    if note:
        console.print(f"[dim]{note}[/]")
    console.print(f"{len(experiments)} experiments")
    first = experiments[0]
    preview = engine_preview(first)
    if preview:
        console.print(f"[bold]{first.backend} engine arguments[/] (experiment 0):")
        console.print_json(data=preview)


def check_flags(resume: bool, fresh: bool, lock: Path | None, cuda: str | None) -> None:
    """Flags that contradict each other or name what is not there, refused before the
    config is read: nothing has been created yet, and nothing half-runs."""
    if resume and fresh:
        raise UserError("--resume and --fresh contradict each other: --resume continues the "
                        "newest study of this name, --fresh starts a new one; pick one")
    if lock is not None and not lock.is_file():
        what = "is a directory" if lock.is_dir() else "not found"
        raise UserError(f"--lock {lock}: {what}; write one with `llem images lock`")
    if cuda is not None:
        from llem.images.cuda import parse_cuda

        parse_cuda(cuda)


def check_before_start(loaded: Any, yes: bool, results_dir: Path, resume: bool,
                       executor: str) -> None:
    """What the config cannot say about itself: a study far larger than intended (unless
    ``--yes``), study GPUs this host lacks, and, for ``--resume``, finished runs whose
    result was damaged since (they run again instead of counting as done)."""
    from llem.config import preflight

    too_big = preflight.size_problem(loaded.study)
    if too_big and not yes:
        raise UserError(f"{loaded.source}: {too_big}")
    if executor != "local":
        return  # a cluster's nodes have their own GPUs and see their own results
    from llem.study.slots import gpu_slots

    gpu_slots(loaded.study.study)  # one GPU twice, too few per experiment: before any start
    gpus = preflight.gpu_problems("study.gpus", loaded.study.study.gpus)
    if gpus:
        raise UserError(f"{loaded.source}: {gpus[0]}")
    if resume:
        from llem.cli.study import recheck_finished, repair_manifests
        from llem.study import manifest as mf

        repair_manifests(results_dir, loaded.study.name)
        existing = mf.find_latest(results_dir, loaded.study.name)
        if existing is not None:
            recheck_finished(existing)


def run(
    config: Annotated[Path | None, typer.Argument(help="Experiment or study YAML.")] = None,
    backend: Annotated[str | None, typer.Option(help="pytorch | vllm | tensorrt")] = None,
    model: Annotated[str | None, typer.Option(help="Model path, HF id or builtin:NAME")] = None,
    preset: Annotated[str | None, typer.Option(help="quick-test | benchmark | throughput")] = None,
    runtime: Annotated[str | None, typer.Option(help="auto | local | docker | podman")] = None,
    results_dir: Annotated[Path, typer.Option(help="Where results go.")] = Path("results"),
    batch_size: Annotated[int | None, typer.Option(help="workload.batch_size")] = None,
    num_prompts: Annotated[
        int | None, typer.Option("--num-prompts", "-n", help="workload.num_prompts")
    ] = None,
    cycles: Annotated[int | None, typer.Option(help="study.cycles")] = None,
    order: Annotated[
        str | None, typer.Option(help="study.order: grouped | interleaved | shuffled")
    ] = None,
    dtype: Annotated[str | None, typer.Option(help="<backend>.dtype")] = None,
    dataset: Annotated[str | None, typer.Option(help="workload.dataset")] = None,
    seed: Annotated[int | None, typer.Option(help="decoding.seed and workload.seed")] = None,
    temperature: Annotated[
        float | None, typer.Option(help="decoding.temperature (strategy sampling)")
    ] = None,
    quantization: Annotated[str | None, typer.Option(help="<backend>.quantization")] = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="study.max_failures = 1")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="runtime.timeout_seconds per run")
    ] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="decoding.max_new_tokens")] = None,
    energy_backend: Annotated[
        str | None, typer.Option(help="auto|zeus|nvml|codecarbon|rapl|none")
    ] = None,
    baseline_seconds: Annotated[float | None, typer.Option(help="Idle baseline window.")] = None,
    gpus: Annotated[str | None, typer.Option(help="Comma-separated GPU ids/UUIDs.")] = None,
    image: Annotated[str | None, typer.Option(help="Explicit image ref (or @sha256:).")] = None,
    registry: Annotated[str | None, typer.Option(help="Registry prefix for images.")] = None,
    pull: Annotated[str | None, typer.Option(help="missing | always | never")] = None,
    cuda: Annotated[str | None, typer.Option(help="Host CUDA version if not detectable.")] = None,
    lock: Annotated[Path | None, typer.Option(help="llem.lock: run only pinned digests.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List experiments, run nothing.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Resume the study in results-dir.")
    ] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start the study over.")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Run a study of more than 1000 runs (without it: refused).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide harness logs.")] = False,
    executor: Annotated[str, typer.Option(help="local | slurm (one job array per study)")] = (
        "local"
    ),
    partition: Annotated[str | None, typer.Option(help="slurm: --partition")] = None,
    account: Annotated[str | None, typer.Option(help="slurm: --account")] = None,
    time_limit: Annotated[
        str | None, typer.Option("--time", help="slurm: per-task --time, e.g. 01:00:00")
    ] = None,
    gpus_per_task: Annotated[int | None, typer.Option(help="slurm: GPUs per task")] = None,
    max_parallel: Annotated[int | None, typer.Option(help="slurm: array %N limit")] = None,
    sbatch_arg: Annotated[
        list[str] | None, typer.Option(help="slurm: extra sbatch argument (repeatable)")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="slurm: follow until done")] = False,
) -> None:
    """Run an experiment or a study."""
    from llem.study import launch

    check_flags(resume, fresh, lock, cuda)
    loaded = launch.load_config(
        config,
        preset,
        overrides(
            backend=backend,
            model=model,
            batch_size=batch_size,
            num_prompts=num_prompts,
            max_new_tokens=max_new_tokens,
            runtime=runtime,
            energy_backend=energy_backend,
            baseline_seconds=baseline_seconds,
            gpus=gpus,
            image=image,
            registry=registry,
            pull=pull,
            cycles=cycles,
            order=order,
            dtype=dtype,
            dataset=dataset,
            seed=seed,
            temperature=temperature,
            quantization=quantization,
            fail_fast=fail_fast,
            timeout=timeout,
        ),
    )
    if dry_run:
        print_dry_run(loaded.study, launch.console)
        return
    check_before_start(loaded, yes, results_dir, resume, executor)
    if executor == "slurm":
        from llem.executors import slurm

        options = slurm.SlurmOptions(
            partition=partition, account=account, time=time_limit, gpus_per_task=gpus_per_task,
            max_parallel=max_parallel, sbatch_args=sbatch_arg or [],
        )
        raise typer.Exit(
            slurm.run_study_slurm(
                loaded, results_dir, options, wait_done=wait, resume=resume, fresh=fresh
            )
        )
    if executor != "local":
        raise UserError(f"--executor: unknown executor '{executor}'; choose local or slurm")
    from llem.study.runner import run_study

    code = run_study(loaded, results_dir=results_dir, quiet=quiet, resume=resume, fresh=fresh,
                     cuda=cuda, lock=lock, console=launch.console)
    raise typer.Exit(code)
