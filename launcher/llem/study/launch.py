"""``llem run`` before it runs: load the config, expand it, list it for a dry run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from llem.config import loader as config_loader
from llem.config.loader import LoadedConfig
from llem_schema.study import expand_experiments

console = Console()
err_console = Console(stderr=True)


def load_config(
    path: Path | None, preset: str | None, overrides: dict[str, object]
) -> LoadedConfig:
    return config_loader.load(path, overrides, preset)


def dry_run(loaded: LoadedConfig) -> None:
    """Print the expanded experiment list (count + table) without running anything."""
    from llem.config.preview import engine_preview

    study = loaded.study
    experiments = expand_experiments(study)
    cycles = study.study.cycles
    swept = list(study.sweep)
    table = Table(title=f"{study.name}: {len(experiments)} experiment(s) x {cycles} cycle(s) "
                        f"= {len(experiments) * cycles} run(s), order {study.study.order}")
    table.add_column("#", justify="right")
    table.add_column("backend")
    table.add_column("model")
    for p in swept:
        table.add_column(p)
    table.add_column("config hash", style="dim")
    for i, exp in enumerate(experiments):
        data = exp.model_dump()
        vals = []
        for p in swept:
            node = data
            for part in p.split("."):
                node = node[part]
            vals.append(str(node))
        table.add_row(str(i), exp.backend, exp.model, *vals, exp.config_hash())
    console.print(table)
    console.print(f"{len(experiments)} experiments")
    preview = engine_preview(experiments[0])
    if preview:
        console.print(f"[bold]{experiments[0].backend} engine arguments[/] (experiment 0):")
        console.print_json(data=preview)
