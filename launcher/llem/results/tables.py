"""Result tables for the terminal (``results show``) and the selection ``compare`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem_schema.errors import ConfigError


def fmt(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "—"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def run_table(r: Any) -> Any:
    from rich.table import Table

    t = Table(title=f"{r.run_id} · {r.backend} · {r.model} · {r.status}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("unit")
    t.add_column("note / reason it is null", style="dim", overflow="fold")

    def p50(name: str) -> float | None:
        d = getattr(r.latency, name)
        return None if d is None else d.p50

    e, tp = r.energy, r.throughput
    rows: list[tuple[str, float | int | None, str, str]] = [
        ("energy / output token", e.per_output_token_j, "J",
         e.null_reasons.get("per_output_token_j", "")),
        ("output tokens / s", tp.output_tokens_per_s, "tok/s",
         tp.null_reasons.get("output_tokens_per_s", "")),
        ("TTFT p50", p50("ttft"), "s", r.latency.null_reasons.get("ttft", "")),
        ("ITL p50", p50("itl"), "s", r.latency.null_reasons.get("itl", "")),
        ("total energy", e.total_j, "J",
         e.null_reasons.get("total_j", "") or f"method: {e.method}"),
        ("baseline-adjusted energy", e.adjusted_j, "J", e.null_reasons.get("adjusted_j", "")),
        ("baseline power", e.baseline_power_w, "W", e.null_reasons.get("baseline_power_w", "")),
        ("mean power", e.mean_power_w, "W", e.null_reasons.get("mean_power_w", "")),
        ("prefill energy / token", r.prefill.energy_per_token_j, "J",
         r.prefill.null_reasons.get("energy_per_token_j", "")),
        ("decode energy / token", r.decode.energy_per_token_j, "J",
         r.decode.null_reasons.get("energy_per_token_j", "")),
        ("output tokens", tp.output_tokens, "", tp.null_reasons.get("output_tokens", "")),
        ("wall time", tp.wall_time_s, "s", tp.null_reasons.get("wall_time_s", "")),
        ("FLOPs / output token", r.flops.per_output_token, "",
         r.flops.null_reasons.get("per_output_token", "") or f"method: {r.flops.method}"),
        ("peak memory", r.memory.peak_allocated_bytes, "B",
         r.memory.null_reasons.get("peak_allocated_bytes", "")),
    ]
    for name, value, unit, note in rows:
        shown = f"{value:,}" if isinstance(value, int) else fmt(value)
        style = "[yellow]null[/]" if value is None else shown
        t.add_row(name, style, unit, note)
    gpus = ", ".join(g.name for g in r.environment.gpus) or r.environment.device
    t.caption = f"{gpus} · driver {r.environment.driver_version or '—'} · " \
                f"runtime {r.environment.runtime}"
    return t


def summary_table(summary: Any, metrics: list[str]) -> Any:
    from rich.table import Table

    from llem.results import metrics as registry
    from llem.results.stats import MIN_CYCLES

    t = Table(title=f"{summary.study_id}: mean [{summary.confidence_level:.0%} CI] across "
                    f"cycles; below {MIN_CYCLES} cycles the range, not a CI", show_lines=False)
    t.add_column("configuration", overflow="fold")
    t.add_column("n ok/runs", justify="right")
    for m in metrics:
        d = registry.metric(m)
        t.add_column(f"{d.label} ({d.unit})", justify="right")
    for c in summary.configs:
        cells = []
        for m in metrics:
            s = c.metrics.get(m)
            if s is None or s.mean is None:
                cells.append("[yellow]null[/]")
                continue
            if s.ci:
                ci = (f" [{fmt(s.ci.low)}, {fmt(s.ci.high)}]"
                      + ("*" if s.ci.method == "percentile" else ""))
            elif s.n_valid >= 2 and s.range_low is not None:
                ci = f" range {fmt(s.range_low)}-{fmt(s.range_high)}"
            else:
                ci = ""
            cv = f" cv {s.cv:.1%}" if s.cv is not None else ""
            flag = " [red]![/]" if s.outlier_cycles else ""
            cells.append(f"{fmt(s.mean)}{ci}\n[dim]n={s.n_valid}{cv}[/]{flag}")
        t.add_row(f"{c.label}\n[dim]{c.config_hash[:8]}[/]",
                  f"{c.n_runs - c.n_failed}/{c.n_runs}", *cells)
    t.caption = (f"* percentile CI (BCa degenerate) · range: min-max of fewer than {MIN_CYCLES} "
                 "cycles (a 95% CI needs more) · ! outlier cycle flagged, kept")
    return t


def values_for(target: str, results_dir: Path, metric_key: str) -> tuple[str, list[float]]:
    """Valid values of one metric for one configuration: ``RUN``, ``STUDY`` (one config) or
    ``STUDY:SELECTOR`` (config hash prefix, experiment id or name)."""
    from llem.results import io as results_io
    from llem.results import metrics as registry
    from llem.results import stats

    if Path(target).exists() or (results_dir / target).exists():
        where, selector = target, ""
    else:
        where, _, selector = target.partition(":")
    path = results_io.resolve(where, results_dir)
    results, _ = results_io.load_results(path)
    results = [r for r in results if r.status == "ok"]
    if not results:
        raise ConfigError(f"{target}: no finished results")
    hashes = {r.config_hash for r in results}
    if selector:
        summary = stats.summarise(results, n_resamples=10)
        chosen = summary.config(selector).config_hash
        results = [r for r in results if r.config_hash == chosen]
    elif len(hashes) > 1:
        raise ConfigError(f"{target}: has {len(hashes)} configurations; pick one with "
                            f"{where}:<config hash prefix or experiment id>")
    d = registry.metric(metric_key)
    vals = [v for v in (d.get(r) for r in results) if v is not None]
    label = f"{path.name}:{selector}" if selector else path.name
    return label, vals
