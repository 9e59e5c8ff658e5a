"""``llem`` command line. Heavy imports live inside commands so ``llem --help`` stays fast
and never loads torch, transformers or pynvml."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from llem import __version__
from llem.cli.app import UserError, command_group

app = command_group("Measure the energy, throughput, latency and FLOPs of LLM inference.",
                    name="llem")


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


def _mount_optional() -> None:
    """Command groups and commands that live in their own modules; a module missing
    from a trimmed install simply leaves its command out."""
    import importlib

    mounts = (
        ("llem.cli.run", "run", "run"),
        ("llem.cli.rerun", "rerun", "rerun"),
        ("llem.cli.config", "config", "config_app"),
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
    except OSError as exc:  # read-only, full or missing results dir, name too long, ...
        typer.echo(f"error: {os_error_line(exc)}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


def os_error_line(exc: OSError) -> str:
    """One line naming the path and the cause, with what to do where it is obvious."""
    import errno
    import os

    path = exc.filename or "?"
    cause = exc.strerror or os.strerror(exc.errno or 0) or type(exc).__name__
    fix = {
        errno.EACCES: "check its permissions or choose another --results-dir",
        errno.EROFS: "the filesystem is read-only; choose another --results-dir",
        errno.ENOSPC: "free some space or choose another --results-dir",
        errno.ENAMETOOLONG: "use a shorter name (study name or results path)",
        errno.ENOTDIR: "a part of this path is a file, not a directory",
        errno.EEXIST: "it already exists",
    }.get(exc.errno or 0)
    return f"{path}: {cause}" + (f" ({fix})" if fix else "")


if __name__ == "__main__":
    main()
