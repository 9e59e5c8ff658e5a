"""``llem rerun RESULT.json``: the same experiment again (config hash, seeds, image digest),
into a new study directory; the logic is :mod:`llem.study.rerun`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from llem.study.envdiff import EnvComparison
    from llem.study.rerun import MetricRow, RerunOutcome, RerunPlan

RESULTS = Path("results")  # as `llem run`


def rerun(
    result: Annotated[Path, typer.Argument(help="A result.json (or its run directory).")],
    runtime: Annotated[str | None, typer.Option(
        help="local | docker | podman (default: the original's). local applies no image.")
    ] = None,
    results_dir: Annotated[Path, typer.Option(help="Where the new study goes.")] = RESULTS,
    cycles: Annotated[int, typer.Option(min=1, help="Repetitions of the rerun.")] = 1,
    compare: Annotated[bool, typer.Option(
        "--compare", help="Compare the rerun with the original (as `llem results compare`).")
    ] = False,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", help="Metrics for --compare (repeatable; default: all).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Hide harness logs.")] = False,
) -> None:
    """Re-run a result's experiment: same resolved config (hash checked), seeds and image
    digest, in a new study directory; says what differs in the environment before and after."""
    from rich.console import Console

    from llem.results import metrics as registry
    from llem.study import rerun as rr

    for m in metric or []:
        registry.metric(m)  # an unknown metric fails before an experiment runs
    console = Console(highlight=False, soft_wrap=True)  # one line per fact, for grep and logs
    rplan = rr.plan(result, runtime=runtime, cycles=cycles)
    _print_plan(console, rplan)
    outcome = rr.execute(rplan, results_dir, console=console, quiet=quiet)
    _print_outcome(console, rplan, outcome)
    if compare and outcome.results:
        a, where = rr.original_runs(rplan)
        console.print(f"original: {where}", markup=False)
        _print_comparison(console, rr.compare_metrics(a, outcome.results, metric))
    code = outcome.exit_code or (1 if outcome.mismatches else 0)
    raise typer.Exit(code)


def _print_plan(console: Console, rplan: RerunPlan) -> None:
    from llem.study.envdiff import seeds

    orig = rplan.original

    def say(text: str) -> None:  # plain: references and values may hold [brackets]
        console.print(text, markup=False)

    say(f"rerun of {rplan.path} (run {orig.run_id})")
    say(f"config hash {orig.config_hash}: recomputed from the recorded config, it matches")
    say("seeds: " + " ".join(f"{k}={v}" for k, v in seeds(orig.config).items()))
    if rplan.image:
        say(f"image: {rplan.image} ({rplan.image_source}; the original's digest "
            f"{orig.environment.image_digest}, runtime {rplan.runtime})")
    else:
        say(f"runtime: {rplan.runtime} (no image)")
    for note in rplan.notes:
        console.print(f"[yellow]note:[/] {_esc(note)}")
    _print_env(console, "environment before the run: original -> this host "
                        "(what the host can know)", rplan.before)


def _print_outcome(console: Console, rplan: RerunPlan, outcome: RerunOutcome) -> None:
    for run_id, comparison in outcome.after.items():
        _print_env(console, f"environment after the run: original -> {run_id} (every field)",
                   comparison)
    if outcome.results and not outcome.mismatches:
        kept = "config hash, seeds" + (", image digest" if rplan.digest_applied else "")
        console.print(f"{kept}: same as the original", markup=False)
    for m in outcome.mismatches:
        console.print(f"[red]differs from the original:[/] {_esc(m)}")
    if outcome.study_dir is not None:
        console.print(f"rerun: {outcome.study_dir}", markup=False)


def _print_env(console: Console, title: str, c: EnvComparison) -> None:
    console.print(f"[bold]{_esc(title)}[/]")
    if c.same:
        console.print(f"  same in all {len(c.compared)} field(s) compared", markup=False)
    for d in c.differences:
        console.print(f"  {d.line()}", markup=False)
    for u in c.unknown:
        console.print(f"  [dim]not compared: {_esc(u)}[/]")


def _print_comparison(console: Console, rows: list[MetricRow]) -> None:
    """One row per compared metric; notes and unmeasured metrics once each, below."""
    from rich.table import Table

    from llem.results.tables import fmt

    t = Table(title="compare: rerun / original")
    for col in ("metric", "original", "rerun", "ratio", "CI"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    notes: dict[str, list[str]] = {}
    for r in rows:
        c = r.comparison
        if c is None:
            notes.setdefault(f"not measured: {r.reason}", []).append(r.key)
            continue
        ci = f"[{fmt(c.ci.low)}, {fmt(c.ci.high)}] ({c.ci.method})" if c.ci else "—"
        t.add_row(r.key, f"{fmt(c.mean_a)} {r.unit} (n={c.n_a})",
                  f"{fmt(c.mean_b)} {r.unit} (n={c.n_b})", fmt(c.ratio), _esc(ci))
        notes.setdefault(c.note, []).append(r.key)
    if t.row_count:
        console.print(t)
    for note, keys in notes.items():
        console.print(f"  {', '.join(keys)}: {note}", markup=False)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)
