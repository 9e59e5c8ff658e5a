"""``llem run`` before it runs: load the config; the consoles the run commands print to."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from llem.config import loader as config_loader
from llem.config.loader import LoadedConfig

console = Console()
err_console = Console(stderr=True)


def load_config(
    path: Path | None, preset: str | None, overrides: dict[str, object]
) -> LoadedConfig:
    return config_loader.load(path, overrides, preset)
