"""The one way llem builds a Typer command group, so every group behaves alike."""

from __future__ import annotations

from typing import Any

import typer


def command_group(help: str, **options: Any) -> typer.Typer:
    """A command group that shows its help when called bare.

    Plain click help (``rich_markup_mode=None``): typer's rich help imports rich.markdown,
    pygments and rich.traceback, +0.1 s on every ``--help`` -- a third of the 0.3 s budget
    of ``llem --help``. Rich stays for tables and progress bars, which are worth it.
    """
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False,
                       rich_markup_mode=None, pretty_exceptions_enable=False, **options)
