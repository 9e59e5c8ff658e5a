"""Rich rendering of results for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from llem_schema.result import ExperimentResult


def _fmt(value: float | int | None, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
        return f"{value:.{digits}e}{unit}"
    return f"{value:.{digits}g}{unit}" if abs(value) < 1000 else f"{value:,.0f}{unit}"


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
        ("energy", _fmt(e.total_j, " J"), e.method or e.null_reasons.get("total_j", "")),
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
