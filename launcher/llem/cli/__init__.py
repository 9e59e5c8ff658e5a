"""``llem`` command line. Heavy imports live inside commands so ``llem --help`` stays fast
and never loads torch, transformers or pynvml."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from llem import __version__
from llem.cli.app import command_group

app = command_group("Measure the energy, throughput, latency and FLOPs of LLM inference.",
                    name="llem")
config_app = command_group("Validate, show and create experiment/study configs.")
app.add_typer(config_app, name="config")


class UserError(Exception):
    """A one-line problem the user can fix; exit code 2."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """llenergymeasure: numbers you can defend in a paper."""


def _overrides(**kw: object) -> dict[str, object]:
    mapping = {
        "backend": "backend",
        "model": "model",
        "batch_size": "workload.batch_size",
        "num_prompts": "workload.num_prompts",
        "max_new_tokens": "decoding.max_new_tokens",
        "runtime": "runtime.runtime",
        "energy_backend": "measurement.energy_backend",
        "baseline_seconds": "measurement.baseline_seconds",
        "image": "runtime.image",
        "registry": "runtime.registry",
        "pull": "runtime.pull_policy",
    }
    out = {mapping[k]: v for k, v in kw.items() if v is not None and k in mapping}
    gpus = kw.get("gpus")
    if gpus:
        out["runtime.gpus"] = [int(g) if str(g).isdigit() else g for g in str(gpus).split(",")]
    return out


@app.command()
def run(
    config: Annotated[Path | None, typer.Argument(help="Experiment or study YAML.")] = None,
    backend: Annotated[str | None, typer.Option(help="pytorch | vllm | tensorrt")] = None,
    model: Annotated[str | None, typer.Option(help="Model path, HF id or builtin:NAME")] = None,
    preset: Annotated[str | None, typer.Option(help="quick-test | benchmark | throughput")] = None,
    runtime: Annotated[str | None, typer.Option(help="auto | local | docker | podman")] = None,
    results_dir: Annotated[Path, typer.Option(help="Where results go.")] = Path("results"),
    batch_size: Annotated[int | None, typer.Option(help="workload.batch_size")] = None,
    num_prompts: Annotated[int | None, typer.Option(help="workload.num_prompts")] = None,
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
    from llem.study import launch as commands_run

    loaded = commands_run.load_config(
        config,
        preset,
        _overrides(
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
        ),
    )
    if dry_run:
        commands_run.dry_run(loaded)
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
    code = commands_run.run_loaded(
        loaded,
        results_dir=results_dir,
        quiet=quiet,
        resume=resume,
        fresh=fresh,
        cuda=cuda,
        lock=lock,
    )
    raise typer.Exit(code)


@config_app.command("validate")
def config_validate(
    file: Annotated[Path, typer.Argument(help="YAML file to check.")],
    preset: Annotated[str | None, typer.Option(help="Preset to apply.")] = None,
) -> None:
    """Check a config; exit 2 with one line on the first problem."""
    from llem.config import loader as config_loader

    loaded = config_loader.load(file, preset=preset)
    n = loaded.study.n_experiments() if loaded.is_study else 1
    kind = "study" if loaded.is_study else "experiment"
    cycles = loaded.study.study.cycles
    typer.echo(f"{file}: valid {kind} ({n} experiment(s) x {cycles} cycle(s))")


@config_app.command("show")
def config_show(
    file: Annotated[Path | None, typer.Argument(help="YAML file (omit for defaults).")] = None,
    preset: Annotated[str | None, typer.Option(help="Preset to apply.")] = None,
    backend: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Print the resolved config and where each value came from."""
    from rich.console import Console
    from rich.table import Table

    from llem.config import loader as config_loader

    loaded = config_loader.load(file, _overrides(backend=backend, model=model), preset)
    data = loaded.study.base.model_dump(mode="json")
    table = Table(title=f"resolved config: {loaded.source}")
    table.add_column("key")
    table.add_column("value")
    table.add_column("source", style="dim")
    sections = {"pytorch", "vllm", "tensorrt"} - {loaded.study.base.backend}
    for path in config_loader.leaf_paths(data):
        if path.split(".")[0] in sections:
            continue
        node = data
        for p in path.split("."):
            node = node[p]
        table.add_row(path, repr(node), loaded.provenance.get(path, "default"))
    Console().print(table)
    if loaded.is_study:
        Console().print(f"sweep: {loaded.study.sweep}  study: {loaded.study.study.model_dump()}")


@config_app.command("new")
def config_new(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
    study: Annotated[bool, typer.Option("--study", help="A study template with a sweep.")] = False,
) -> None:
    """Write a commented config template."""
    from llem.config import templates

    text = templates.STUDY if study else templates.EXPERIMENT
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists():
        raise UserError(f"{output}: already exists; choose another path")
    output.write_text(text)
    typer.echo(f"wrote {output}")


@config_app.command("schema")
def config_schema(
    name: Annotated[str, typer.Argument(help="experiment | study | result")] = "experiment",
) -> None:
    """Print a JSON Schema of the contract."""
    from llem_schema.jsonschema_export import MODELS, schema_documents
    from llem_schema.version import SCHEMA_MAJOR

    if name not in MODELS:
        raise UserError(f"schema: unknown schema '{name}'; choose from {', '.join(MODELS)}")
    typer.echo(schema_documents()[f"{name}.v{SCHEMA_MAJOR}.schema.json"], nl=False)


def _mount_optional() -> None:
    """Command groups and commands that live in their own modules; a module missing
    from a trimmed install simply leaves its command out."""
    import importlib

    mounts = (
        ("llem.cli.results", "results", "app"),
        ("llem.cli.images", "images", "app"),
        ("llem.cli.study", "study", "app"),
        ("llem.cli.doctor", "doctor", "doctor"),
        ("llem.cli.run_one", "run-one", "run_one"),
    )
    for module, name, attr in mounts:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        target = getattr(mod, attr)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


_mount_optional()


def main() -> None:
    """Entry point. Every error the user can fix -- a bad flag (click's usage errors), a bad
    config, an unavailable runtime -- becomes one line on stderr and exit code 2, never a
    traceback or a boxed panel that a log grep would split."""
    try:  # newer typer vendors click: its exceptions are not the click package's
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - older typer on the click package
        from click import exceptions as click  # type: ignore[no-redef]
    # click < 8.2 shows the help itself and exits 0 instead of raising
    no_args_help = getattr(click, "NoArgsIsHelpError", ())

    from llem.runtimes.base import RuntimeUnavailable
    from llem_schema.exceptions import ConfigError

    try:
        rv = app(prog_name="llem", standalone_mode=False)
    except no_args_help as exc:  # `llem`, `llem config`: the help, as click does
        text = exc.ctx.get_help() if exc.ctx else ""
        if text:  # typer's rich help prints itself and returns ""
            typer.echo(text)
        sys.exit(2)
    except click.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        typer.echo(f"error: {where}{exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (ConfigError, UserError, RuntimeUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
