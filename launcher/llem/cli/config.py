"""``llem config validate|show|new|schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llem.cli.app import UserError, command_group, overrides

config_app = command_group(
    "Validate, show and create experiment/study configs.\n\n"
    "Settings of the user rather than of an experiment live in the user config file, "
    "platformdirs' user_config_dir('llem')/config.yaml (~/.config/llem/config.yaml on Linux). "
    "It takes 'registry: HOST[/PATH]', the registry images are pulled from, used when neither "
    "--registry nor LLEM_REGISTRY is given; without it, images/matrix.yaml's registry (where "
    "the release workflow pushes). See docs/docker.md."
)


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
    ex = loaded.study.study
    more = "" if ex.target_ci is None else (
        f", up to {ex.target_ci.max_cycles} until the CI of {ex.target_ci.metric} is within "
        f"+-{ex.target_ci.rel_half_width:.1%} (study.target_ci)")
    typer.echo(f"{file}: valid {kind} ({n} experiment(s) x {ex.cycles} cycle(s){more})")


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

    loaded = config_loader.load(file, overrides(backend=backend, model=model), preset)
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
