"""``llem run``: parse the flags into config overrides and hand the study to llem.study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llem.cli.app import UserError, overrides


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
        launch.dry_run(loaded)
        return
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
