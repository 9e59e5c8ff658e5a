"""``llem results``: list, show, compare, export, aggregate, pareto and plot results.

Heavy libraries (pyarrow, scipy, numpy, matplotlib) are imported inside the commands so
``llem --help`` stays fast. Every user-facing problem is one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from llem.cli.app import command_group

app = command_group("Inspect, compare, aggregate, export and plot results.")
plot_app = command_group("Figures (PNG/SVG): power trace, Pareto scatter, sweep line.")
app.add_typer(plot_app, name="plot")

F = TypeVar("F", bound=Callable[..., Any])

ResultsDir = Annotated[Path, typer.Option("--results-dir", envvar="LLEM_RESULTS_DIR",
                                          help="Directory holding studies.")]
DEFAULT_RESULTS = Path("results")


def _one_line_errors(fn: F) -> F:
    """Turn ConfigError/ValueError-like user problems into ``error: ...`` and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from llem_schema.errors import ConfigError

        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _console() -> Any:
    from rich.console import Console

    return Console()


def _load_summary(target: str, results_dir: Path) -> tuple[Path, Any]:
    from llem.results import export
    from llem.results import io as results_io

    path = results_io.resolve(target, results_dir)
    return path, export.load_summary(path)


# ---------------------------------------------------------------------------- list


@app.command("list")
@_one_line_errors
def list_(results_dir: ResultsDir = DEFAULT_RESULTS) -> None:
    """Studies and single runs under the results directory, newest first."""
    from llem.results import io as results_io

    infos = results_io.find_studies(results_dir)
    if not infos:
        typer.echo(f"no studies or runs under {results_dir}")
        return
    console = _console()
    _print_fitted(console, *_list_table(infos, results_dir, console.width))


def _list_table(infos: list[Any], results_dir: Path, width: int) -> tuple[Any, list[str]]:
    """One row per study; ``kind`` and ``created`` are left out first on a narrow terminal
    (a study id is never folded: it is what the other commands take)."""
    from llem.results.display import Col, fit_table

    colour = {"complete": "green", "incomplete": "yellow", "done with failures": "red"}
    cols = [Col("id"), Col("kind", drop=1), Col("exps", justify="right"),
            Col("runs\ndone", justify="right"), Col("failed", justify="right"),
            Col("status"), Col("created\n(UTC)", drop=2)]
    rows = [[s.study_id, s.kind, str(s.experiments), f"{s.runs_done}/{s.runs_total}",
             str(s.runs_failed), f"[{colour.get(s.status, 'white')}]{s.status}[/]",
             (s.created_at or "")[5:16].replace("T", " ")] for s in infos]
    return fit_table(cols, rows, width, title=f"results in {results_dir}")


def _print_fitted(console: Any, table: Any, hidden: list[str], hint: str = "") -> None:
    """A table from :func:`llem.results.display.fit_table`, then which columns it left out."""
    from llem.results.display import hidden_note

    console.print(table)
    note = hidden_note(hidden, console.width, hint)
    if note:
        console.print(f"[dim]{note}[/]")


# ---------------------------------------------------------------------------- show


@app.command("show")
@_one_line_errors
def show(
    target: Annotated[str, typer.Argument(help="Run or study id (or path).")],
    results_dir: ResultsDir = DEFAULT_RESULTS,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", help="Metrics to show (repeatable; default: all but "
        "total_energy, which energy_per_pass states per workload pass).")] = None,
) -> None:
    """Key metrics of a run (nulls with reasons) or the per-config summary of a study."""
    from llem.results import io as results_io
    from llem.results import metrics as registry
    from llem.results import tables

    path = results_io.resolve(target, results_dir)
    console = _console()
    is_run = (path / "result.json").exists() or results_io.study_info(path).runs_total == 1
    if is_run:
        results, _ = results_io.load_results(path)
        if not results:
            raise _config_error(f"{path}: the run has no result yet")
        r = results[0]
        console.print(tables.run_table(r, console.width))
        _print_efficiency(console, [r])
        for w in r.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        return
    _, summary = _load_summary(str(path), results_dir)
    metrics = [registry.metric(m).key for m in (metric or _show_defaults(summary))]
    _print_fitted(console, *tables.summary_table(summary, metrics, console.width),
                  hint=", or pick metrics with -m")
    _print_efficiency(console, results_io.load_results(path)[0])
    for w in summary.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    for c in summary.configs:
        for w in c.warnings:
            console.print(f"[yellow]{c.label}:[/] {w}")


def _show_defaults(summary: Any) -> list[str]:
    """``results show``'s metrics without -m: the idle-adjusted energy per token first
    where every configuration has a baseline (it is what the work cost; the narrow-terminal
    table leaves columns out from the end), the gross one first otherwise; a stderr line
    says which."""
    from llem.results import compare
    from llem.results import metrics as registry

    keys = registry.default_keys()
    if compare.summary_has_baseline(summary):
        keys = [registry.ENERGY_ADJUSTED, *(k for k in keys if k != registry.ENERGY_ADJUSTED)]
        _note(f"note: {compare.energy_basis(registry.ENERGY_ADJUSTED)} in the first column; "
              f"the gross beside it ({registry.ENERGY_GROSS})")
    elif compare.summary_has_values(summary, registry.ENERGY_GROSS):
        _note(f"note: {compare.energy_basis(registry.ENERGY_GROSS)}; no idle baseline: "
              f"{compare.summary_null_reason(summary, registry.ENERGY_ADJUSTED)}")
    return keys


def _print_efficiency(console: Any, results: list[Any]) -> None:
    from llem.results.efficiency import study_efficiency

    eff = study_efficiency(results)
    if eff is not None:
        console.print(eff.line())


def _config_error(msg: str) -> Exception:
    from llem_schema.errors import ConfigError

    return ConfigError(msg)


# ------------------------------------------------------------------------- compare


@app.command("compare")
@_one_line_errors
def compare(
    a: Annotated[str, typer.Argument(help="Baseline: RUN, STUDY or STUDY:CONFIG.")],
    b: Annotated[str, typer.Argument(help="Candidate: RUN, STUDY or STUDY:CONFIG.")],
    metric: Annotated[str | None, typer.Option(
        "--metric", "-m", help="Metric to compare [default: energy_per_token_adjusted where "
        "both selections have an idle baseline, else energy_per_token, else the first metric "
        "with values in both].")] = None,
    results_dir: ResultsDir = DEFAULT_RESULTS,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Ratio B/A of a metric's mean with a bootstrap CI; significant when it excludes 1."""
    from llem.results import compare, tables

    la, ra = tables.select_results(a, results_dir)
    lb, rb = tables.select_results(b, results_dir)
    metric = _compare_metric(metric, (la, ra), (lb, rb))
    va, vb = tables.metric_values(ra, metric), tables.metric_values(rb, metric)
    res = compare.compare_ratio(va, vb, metric_key=metric, a_label=la, b_label=lb, seed=seed)
    from rich.table import Table

    t = Table(title=f"compare {metric}: B / A")
    for col in ("", "n", "mean"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row(f"A  {la}", str(res.n_a), f"{tables.fmt(res.mean_a)} {res.unit}")
    t.add_row(f"B  {lb}", str(res.n_b), f"{tables.fmt(res.mean_b)} {res.unit}")
    ci = (f"[{tables.fmt(res.ci.low)}, {tables.fmt(res.ci.high)}] ({res.ci.method})"
          if res.ci else "—")
    t.add_row("ratio B/A", "", f"{tables.fmt(res.ratio)}  {ci}")
    console = _console()
    console.print(t)
    colour = "green" if res.significant else "yellow"
    console.print(f"[{colour}]{res.note}[/]")


def _compare_metric(asked: str | None, a: tuple[str, list[Any]],
                    b: tuple[str, list[Any]]) -> str:
    """The metric asked for (its null explained when a side has no value), else the
    default or, where that is null (a CPU host has no energy), the first with values."""
    from llem.results import compare, tables

    def empty_sides(key: str) -> list[tuple[str, list[Any]]]:
        return [side for side in (a, b) if not tables.metric_values(side[1], key)]

    def has(key: str) -> bool:
        return not empty_sides(key)

    def why(key: str) -> str:
        return compare.results_null_reason(empty_sides(key)[0][1], key)

    if asked is not None:
        from llem.results import metrics as registry

        registry.metric(asked)
        empty = empty_sides(asked)
        if empty:
            where = "" if len(empty) == 2 else f"{empty[0][0]}: "
            raise _config_error(where + compare.no_values(asked, why(asked)))
        return asked
    key, note = compare.choose_energy_metric(
        compare.results_have_baseline(a[1]) and compare.results_have_baseline(b[1]), has, why,
        flag="--metric")
    _note(note)
    return key


def _note(note: str | None) -> None:
    if note:
        typer.echo(note, err=True)


def _summary_metric(summary: Any, asked: str | None, flag: str,
                    exclude: tuple[str, ...] = ()) -> str:
    """A study command's metric: the one asked for, else the energy per token (idle-adjusted
    where every configuration has a baseline, else gross) or the first metric with values;
    which, on stderr."""
    from llem.results import compare

    if asked is not None:
        return asked
    key, note = compare.choose_energy_metric(
        compare.summary_has_baseline(summary), lambda k: compare.summary_has_values(summary, k),
        lambda k: compare.summary_null_reason(summary, k), flag=flag, exclude=exclude)
    _note(note)
    return key


# -------------------------------------------------------------------------- export


@app.command("export")
@_one_line_errors
def export_cmd(
    target: Annotated[list[str] | None, typer.Argument(
        help="Studies/runs to export (default: all under --results-dir).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv | parquet | json | hf-dataset")]
    = "parquet",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File (or folder for "
                                                   "hf-dataset).")] = None,
    results_dir: ResultsDir = DEFAULT_RESULTS,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty hf-dataset "
                                        "folder.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip unreadable results "
                                               "(listed) instead of failing.")] = False,
) -> None:
    """One row per run (flattened config + metrics + environment) as a file or HF dataset."""
    from llem.results import export
    from llem.results import io as results_io

    if fmt not in export.FORMATS:
        export.export([], fmt, Path("."))  # raises the one-line format error
    if output is not None:
        _check_output_parent(output)
    paths = ([results_io.resolve(t, results_dir) for t in target] if target
             else [s.path for s in results_io.find_studies(results_dir)])
    results, errors = [], []
    for p in paths:
        rs, errs = results_io.load_results(p, skip_invalid=skip_invalid)
        results += rs
        errors += errs
    for e in errors:
        typer.echo(f"skipped: {e}", err=True)
    if output is None:
        ext = {"parquet": ".parquet", "csv": ".csv", "json": ".json", "hf-dataset": ""}[fmt]
        name = paths[0].name if len(paths) == 1 else "results"
        output = Path(f"{name}-export{ext}" if ext else f"{name}-hf-dataset")
    title = paths[0].name if len(paths) == 1 else f"llem results ({len(paths)} studies)"
    out, n = export.export(results, fmt, output, title=title, force=force)
    typer.echo(f"wrote {n} row(s) to {out}")


def _check_output_parent(output: Path) -> None:
    """A file where a folder of ``-o`` should be is named as such, before any result is
    read (creating the folder would report 'File exists' about a path not given)."""
    for parent in output.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _config_error(f"-o {output}: {parent} is a file, not a directory")
            return


# ----------------------------------------------------------------------- aggregate


@app.command("aggregate")
@_one_line_errors
def aggregate_cmd(
    study: Annotated[str, typer.Argument(help="Study id or path.")],
    results_dir: ResultsDir = DEFAULT_RESULTS,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip unreadable results "
                                               "(listed in summary.json).")] = False,
    seed: Annotated[int, typer.Option(help="Bootstrap seed (summaries are reproducible).")] = 0,
) -> None:
    """Rebuild study.parquet (one row per run) and summary.json (per-config bootstrap CIs)."""
    from llem.results import export
    from llem.results import io as results_io

    path = results_io.resolve(study, results_dir)
    rep = export.aggregate(path, skip_invalid=skip_invalid, seed=seed)
    for s in rep.skipped:
        typer.echo(f"skipped: {s}", err=True)
    typer.echo(f"{rep.n_results} result(s), {rep.n_configs} configuration(s) -> {rep.parquet}, "
               f"{rep.summary}")


# -------------------------------------------------------------------------- pareto


@app.command("pareto")
@_one_line_errors
def pareto(
    study: Annotated[str, typer.Argument(help="Study id or path.")],
    x: Annotated[str | None, typer.Option("--x", help="Metric on x [default: "
                                          "energy_per_token_adjusted with an idle baseline, "
                                          "else energy_per_token, else the first with "
                                          "values].")]
    = None,
    y: Annotated[str, typer.Option("--y", help="Metric on y.")] = "tokens_per_s",
    results_dir: ResultsDir = DEFAULT_RESULTS,
) -> None:
    """Pareto-optimal configurations (means) for two metrics, best x first."""
    from llem.results import compare, tables

    _, summary = _load_summary(study, results_dir)
    x = _summary_metric(summary, x, "--x", exclude=(y,))
    front = compare.pareto_configs(summary, x, y)
    console = _console()
    _print_fitted(console, *tables.pareto_table(summary, front, x, y, console.width))


# ---------------------------------------------------------------------------- plot


def _default_out(path: Path, name: str) -> Path:
    return path / "plots" / name


def _report(paths: list[Path]) -> None:
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@plot_app.command("power")
@_one_line_errors
def plot_power(
    run: Annotated[str, typer.Argument(help="Run id/path (a study of one run, or a cycle dir).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="x.png, x.svg, or x "
                                                   "for both.")] = None,
    results_dir: ResultsDir = DEFAULT_RESULTS,
) -> None:
    """Power over time with phase bands and the idle baseline."""
    from llem.results import io as results_io
    from llem.results import plots
    from llem_schema.runspec import TIMESERIES_FILE

    path = results_io.resolve(run, results_dir)
    run_dir = path
    if not (path / "result.json").exists():
        refs = [r for r in results_io.run_refs(path) if r.state != "pending"]
        if len(refs) != 1:
            raise _config_error(f"{run}: has {len(refs)} runs; give one run directory "
                                f"(e.g. {path}/<experiment>/cycle-0)")
        run_dir = refs[0].path
    r = results_io.load_result(run_dir)
    ts = run_dir / (r.timeseries_file or TIMESERIES_FILE)
    out = output or _default_out(run_dir, "power")
    _report(plots.power_trace(ts, out, baseline_w=r.energy.baseline_power_w,
                              title=f"{r.run_id} · {r.backend} · {r.model}"))


@plot_app.command("pareto")
@_one_line_errors
def plot_pareto(
    study: Annotated[str, typer.Argument(help="Study id or path.")],
    x: Annotated[str | None, typer.Option("--x", help="[default: energy_per_token_adjusted "
                                          "with an idle baseline, else energy_per_token, "
                                          "else the first metric with values]")] = None,
    y: Annotated[str, typer.Option("--y")] = "tokens_per_s",
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    results_dir: ResultsDir = DEFAULT_RESULTS,
) -> None:
    """Scatter of configurations (mean, CI or range error bars) with the Pareto front."""
    from llem.results import plots

    path, summary = _load_summary(study, results_dir)
    x = _summary_metric(summary, x, "--x", exclude=(y,))
    _report(plots.pareto_scatter(summary, output or _default_out(path, f"pareto-{x}-{y}"),
                                 x=x, y=y))


@plot_app.command("sweep")
@_one_line_errors
def plot_sweep(
    study: Annotated[str, typer.Argument(help="Study id or path.")],
    param: Annotated[str, typer.Option("--param", "-p", help="Swept parameter, e.g. "
                                       "workload.batch_size.")],
    metric: Annotated[str | None, typer.Option(
        "--metric", "-m", help="[default: energy_per_token_adjusted with an idle baseline, "
        "else energy_per_token, else the first metric with values]")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    results_dir: ResultsDir = DEFAULT_RESULTS,
) -> None:
    """A metric (mean, CI or range error bars) against one swept parameter."""
    from llem.results import plots

    path, summary = _load_summary(study, results_dir)
    metric = _summary_metric(summary, metric, "--metric")
    out = output or _default_out(path, f"sweep-{param.split('.')[-1]}-{metric}")
    _report(plots.sweep_line(summary, out, param=param, metric_key=metric))
