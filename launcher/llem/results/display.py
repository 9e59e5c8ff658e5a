"""Rich rendering of results for the terminal, and tables that fit the terminal's width.

Rich shrinks a table that is too wide by narrowing its widest columns, whatever words they
hold: at 80 columns headers came out as "configura / tion" or "idle-adj…". :func:`fit_table`
sizes the columns itself instead: no column narrower than its longest word, columns of low
priority left out (and named, so the reader knows) when even that does not fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table

from llem_schema.result import ExperimentResult

#: a column whose values are single long tokens (paths, refs) may fold them at this width
FOLD_MIN = 12


@dataclass(frozen=True)
class Col:
    """One column of a table sized by :func:`fit_table`."""

    header: str
    justify: JustifyMethod = "left"
    #: None: always shown; else left out when the table does not fit, lowest first
    drop: int | None = None
    #: values are long unbreakable tokens (paths, refs): fold them rather than widen
    fold: bool = False
    style: str | None = None


def _plain_lines(text: str) -> list[str]:
    from rich.text import Text

    return Text.from_markup(text).plain.splitlines() or [""]


def _extent(texts: Sequence[str], fold: bool) -> tuple[int, int]:
    """(narrowest width that splits no word, width that wraps nothing) of some cells."""
    from rich.cells import cell_len

    lines = [ln for t in texts for ln in _plain_lines(t)]
    words = [cell_len(w) for ln in lines for w in ln.split()] or [1]
    longest = max(cell_len(ln) for ln in lines) if lines else 1
    narrow = min(max(words), FOLD_MIN) if fold else max(words)
    return narrow, max(longest, 1)


def _overhead(n_columns: int) -> int:
    """Borders and padding of a boxed table: one space each side of a cell, one rule
    between columns and one at each edge."""
    return 3 * n_columns + 1


def _grow(narrow: list[int], wide: list[int], room: int) -> list[int]:
    """Widths from the narrowest; spare room goes, one cell at a time, to the column that
    is furthest from showing its content unwrapped."""
    widths = list(narrow)
    spare = room - sum(widths)
    while spare > 0:
        i = max(range(len(widths)), key=lambda k: wide[k] - widths[k])
        if wide[i] <= widths[i]:
            break
        widths[i] += 1
        spare -= 1
    return widths


def fit_table(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int,
              **table_kwargs: Any) -> tuple[Table, list[str]]:
    """A rich Table of ``rows`` no wider than ``width`` where possible, and the headers of
    the columns left out to get there (one line each, for a note)."""
    extents = [_extent([c.header, *(r[i] for r in rows)], c.fold) for i, c in enumerate(cols)]
    kept = list(range(len(cols)))

    def need(ids: list[int]) -> int:
        return sum(extents[i][0] for i in ids) + _overhead(len(ids))

    while need(kept) > width:
        droppable = [i for i in kept if cols[i].drop is not None]
        if not droppable:
            break
        kept.remove(min(droppable, key=lambda i: (cols[i].drop, -i)))
    widths = _grow([extents[i][0] for i in kept], [extents[i][1] for i in kept],
                   width - _overhead(len(kept)))
    table = Table(**table_kwargs)
    for i, w in zip(kept, widths):
        c = cols[i]
        table.add_column(c.header, justify=c.justify, style=c.style, width=w,
                         overflow="fold" if c.fold else "ellipsis")
    for r in rows:
        table.add_row(*(r[i] for i in kept))
    hidden = [" ".join(cols[i].header.split()) for i in range(len(cols)) if i not in kept]
    return table, hidden


def hidden_note(hidden: Sequence[str], width: int, hint: str = "") -> str | None:
    """One line naming the columns :func:`fit_table` left out, or None."""
    if not hidden:
        return None
    them = "it" if len(hidden) == 1 else "them"
    return (f"left out at {width} columns: {'; '.join(hidden)}"
            f" (a wider terminal shows {them}{hint})")


def _fmt(value: float | int | None, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
        return f"{value:.{digits}e}{unit}"
    return f"{value:.{digits}g}{unit}" if abs(value) < 1000 else f"{value:,.0f}{unit}"


def _per_pass(r: ExperimentResult) -> float | None:
    from llem.results.metrics import METRICS

    return METRICS["energy_per_pass"].get(r)


def result_table(r: ExperimentResult) -> Table:
    t = Table(
        title=f"{r.config.name or r.experiment_id} · {r.backend} · {r.model}", show_lines=False
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("note", style="dim", overflow="fold")
    e = r.energy
    rows = [
        ("output tokens", _fmt(r.throughput.output_tokens), ""),
        ("throughput", _fmt(r.throughput.output_tokens_per_s, " tok/s"), ""),
        ("wall time", _fmt(r.throughput.wall_time_s, " s"), f"{r.setup.measured_passes} pass(es)"),
        (
            "TTFT p50",
            _fmt(r.latency.ttft.p50 * 1e3 if r.latency.ttft else None, " ms"),
            r.latency.null_reasons.get("ttft", ""),
        ),
        (
            "ITL p50",
            _fmt(r.latency.itl.p50 * 1e3 if r.latency.itl else None, " ms"),
            r.latency.null_reasons.get("itl", ""),
        ),
        ("energy / pass", _fmt(_per_pass(r), " J"), e.null_reasons.get("total_j", "")),
        ("window energy", _fmt(e.total_j, " J"),
         f"{r.setup.measured_passes} pass(es); " + (e.method or e.null_reasons.get("total_j", ""))),
        ("energy / token", _fmt(e.per_output_token_j, " J"), ""),
        ("baseline-adjusted", _fmt(e.adjusted_j, " J"), e.null_reasons.get("adjusted_j", "")),
        ("prefill energy/token", _fmt(r.prefill.energy_per_token_j, " J"), ""),
        ("decode energy/token", _fmt(r.decode.energy_per_token_j, " J"), ""),
        ("FLOPs / token", _fmt(r.flops.per_output_token), r.flops.method or ""),
        (
            "peak memory",
            _fmt(r.memory.peak_allocated_bytes, " B"),
            r.memory.null_reasons.get("peak_allocated_bytes", ""),
        ),
        ("device", r.environment.device, ", ".join(g.name for g in r.environment.gpus)),
    ]
    for row in rows:
        t.add_row(*row)
    return t


def print_result(r: ExperimentResult, console: Console | None = None) -> None:
    console = console or Console()
    console.print(result_table(r))
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}")
