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


def run_table(r: Any, width: int = 80) -> Any:
    """Key metrics of one run, nulls with their reasons, sized to ``width`` columns."""
    from llem.results.display import Col, fit_table
    from llem.results.metrics import METRICS

    def p50(name: str) -> float | None:
        d = getattr(r.latency, name)
        return None if d is None else d.p50

    def registry_row(key: str, name: str) -> tuple[str, float | None, str, str]:
        d = METRICS[key]
        v = d.get(r)
        return (name, v, d.unit, "" if v is not None else d.reason(r) or "")

    e, tp = r.energy, r.throughput
    passes = r.setup.measured_passes
    rows: list[tuple[str, float | int | None, str, str]] = [
        ("energy / output token", e.per_output_token_j, "J",
         e.null_reasons.get("per_output_token_j", "") or "gross (idle power in)"),
        registry_row("energy_per_token_adjusted", "  idle-adjusted"),
        ("output tokens / s", tp.output_tokens_per_s, "tok/s",
         tp.null_reasons.get("output_tokens_per_s", "")),
        ("TTFT p50", p50("ttft"), "s", r.latency.null_reasons.get("ttft", "")),
        ("ITL p50", p50("itl"), "s", r.latency.null_reasons.get("itl", "")),
        ("energy / workload pass", METRICS["energy_per_pass"].get(r), "J",
         e.null_reasons.get("total_j", "")),
        ("window total energy", e.total_j, "J",
         e.null_reasons.get("total_j", "")
         or f"{passes} pass(es) in the window; method: {e.method}"),
        ("baseline-adjusted energy", e.adjusted_j, "J", e.null_reasons.get("adjusted_j", "")),
        ("baseline power", e.baseline_power_w, "W", e.null_reasons.get("baseline_power_w", "")),
        ("mean power", e.mean_power_w, "W", e.null_reasons.get("mean_power_w", "")),
        registry_row("prefill_energy_per_token", "prefill energy / token"),
        registry_row("prefill_energy_per_token_adjusted", "  idle-adjusted"),
        registry_row("decode_energy_per_token", "decode energy / token"),
        registry_row("decode_energy_per_token_adjusted", "  idle-adjusted"),
        ("output tokens", tp.output_tokens, "", tp.null_reasons.get("output_tokens", "")),
        ("wall time", tp.wall_time_s, "s", tp.null_reasons.get("wall_time_s", "")),
        ("FLOPs / output token", r.flops.per_output_token, "",
         r.flops.null_reasons.get("per_output_token", "") or f"method: {r.flops.method}"),
        registry_row("flops_per_joule", "FLOPs / J"),
        ("peak memory", r.memory.peak_allocated_bytes, "B",
         r.memory.null_reasons.get("peak_allocated_bytes", "")),
    ]
    cells = [[name, "[yellow]null[/]" if value is None
              else f"{value:,}" if isinstance(value, int) else fmt(value), unit, note]
             for name, value, unit, note in rows]
    cols = [Col("metric"), Col("value", justify="right"), Col("unit"),
            Col("note / reason it is null", style="dim")]
    gpus = ", ".join(g.name for g in r.environment.gpus) or r.environment.device
    table, _ = fit_table(cols, cells, width,
                         title=f"{r.run_id} · {r.backend} · {r.model} · {r.status}",
                         caption=f"{gpus} · driver {r.environment.driver_version or '—'} · "
                                 f"runtime {r.environment.runtime}")
    return table


def interval_text(s: Any) -> str:
    """The spread shown under a mean: the CI when there is one (``*`` percentile), the
    min-max range below MIN_CYCLES cycles, nothing for a single value."""
    if s.ci:
        return f"[{fmt(s.ci.low)}, {fmt(s.ci.high)}]" + ("*" if s.ci.method == "percentile"
                                                         else "")
    if s.n_valid >= 2 and s.range_low is not None:
        return f"range {fmt(s.range_low)} to {fmt(s.range_high)}"
    return ""


def _summary_cell(s: Any) -> str:
    if s is None or s.mean is None:
        return "[yellow]null[/]"
    cv = f" cv {s.cv:.1%}" if s.cv is not None else ""
    flag = " [red]![/]" if s.outlier_cycles else ""
    spread = interval_text(s)
    return "\n".join([fmt(s.mean), *([spread] if spread else []),
                      f"[dim]n={s.n_valid}{cv}[/]{flag}"])


def metric_header(key: str) -> str:
    """A metric's column header: its label, the unit on a line of its own."""
    from llem.results import metrics as registry

    d = registry.metric(key)
    return f"{d.label}\n({d.unit})"


def summary_table(summary: Any, metrics: list[str], width: int = 80) -> tuple[Any, list[str]]:
    """Per-configuration mean and spread of ``metrics``, sized to ``width`` columns; the
    second item names the metrics left out for lack of room (all-null ones first, then
    from the end of ``metrics``)."""
    from llem.results.display import Col, fit_table
    from llem.results.stats import MIN_CYCLES

    def all_null(m: str) -> bool:
        return all(c.metrics.get(m) is None or c.metrics[m].mean is None
                   for c in summary.configs)

    cols = [Col("configuration"), Col("ok/runs", justify="right")]
    cols += [Col(metric_header(m), justify="right",
                 drop=0 if all_null(m) else len(metrics) - j)
             for j, m in enumerate(metrics)]
    rows = [[f"{c.label}\n[dim]{c.config_hash[:8]}[/]", f"{c.n_runs - c.n_failed}/{c.n_runs}",
             *(_summary_cell(c.metrics.get(m)) for m in metrics)] for c in summary.configs]
    shown = [c.metrics[m] for c in summary.configs for m in metrics if c.metrics.get(m)]
    level = f"{summary.confidence_level:.0%} CI"
    cis = any(s.ci for s in shown)
    ranges = any(not s.ci and interval_text(s) for s in shown)
    # say "CI" only where a CI is shown: a study of 2-3 cycles shows ranges alone
    spread = (f"[{level}] across cycles; below {MIN_CYCLES} cycles the range, not a CI"
              if cis and ranges else f"[{level}] across cycles" if cis
              else f"and range across cycles (a {level} needs >= {MIN_CYCLES} cycles)")
    notes = [*(["* percentile CI (BCa degenerate)"] if any(
                 s.ci and s.ci.method == "percentile" for s in shown) else []),
             *([f"range: min to max of fewer than {MIN_CYCLES} cycles"] if ranges else []),
             *(["! outlier cycle flagged, kept"] if any(s.outlier_cycles for s in shown)
               else [])]
    return fit_table(cols, rows, width, title=f"{summary.study_id}: mean {spread}",
                     caption=" · ".join(notes) or None)


def pareto_table(summary: Any, front: list[Any], x: str, y: str,
                 width: int = 80) -> tuple[Any, list[str]]:
    """The Pareto-optimal configurations, best x first, with each mean's spread."""
    from llem.results import metrics as registry
    from llem.results.display import Col, fit_table

    dx, dy = registry.metric(x), registry.metric(y)

    def cell(s: Any) -> str:
        spread = interval_text(s)
        return f"{fmt(s.mean)}\n{spread}" if spread else fmt(s.mean)

    cols = [Col("configuration"), Col("hash", drop=1), Col(metric_header(x), justify="right"),
            Col(metric_header(y), justify="right")]
    rows = [[c.label, c.config_hash[:8], cell(c.metrics[x]), cell(c.metrics[y])]
            for c in front]
    return fit_table(
        cols, rows, width,
        title=f"Pareto front: {dx.label} ({'max' if dx.higher_is_better else 'min'}) vs "
              f"{dy.label} ({'max' if dy.higher_is_better else 'min'}) — "
              f"{len(front)} of {len(summary.configs)} configurations")


def select_results(target: str, results_dir: Path) -> tuple[str, list[Any]]:
    """The finished results of one configuration: ``RUN``, ``STUDY`` (one config) or
    ``STUDY:SELECTOR`` (config hash prefix, experiment id or name), with its label."""
    from llem.results import io as results_io
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
    label = f"{path.name}:{selector}" if selector else path.name
    return label, results


def metric_values(results: list[Any], metric_key: str) -> list[float]:
    """The non-null values of one metric over some results."""
    from llem.results import metrics as registry

    d = registry.metric(metric_key)
    return [v for v in (d.get(r) for r in results) if v is not None]


def values_for(target: str, results_dir: Path, metric_key: str) -> tuple[str, list[float]]:
    """Valid values of one metric for one configuration (see :func:`select_results`)."""
    label, results = select_results(target, results_dir)
    return label, metric_values(results, metric_key)
