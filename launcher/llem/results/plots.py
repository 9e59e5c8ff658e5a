"""Figures for papers: power trace of a run, energy/token vs throughput Pareto, sweeps.

matplotlib with the Agg backend (no display needed, works on clusters); every figure is
written as PNG and/or SVG depending on the output suffix (no suffix: both). matplotlib is
the ``[plots]`` extra; a missing install is one line naming the extra. Each ``*_figure``
returns the matplotlib Figure (tests read its ticks, legend and labels); the writers save
and close it.

What a reviewer checks: error bars say what they are (a CI only from MIN_CYCLES cycles,
else the min-max range and its n), swept values are in numeric order with integer ticks
for integer parameters, and the legend sits beside the axes, never over data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llem_schema.errors import ConfigError

PHASE_COLORS = {"baseline": "#9e9e9e", "warmup": "#ffcc80", "prefill": "#90caf9",
                "decode": "#a5d6a7", "idle": "#e0e0e0"}


def _plt() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ConfigError("plots need matplotlib: pip install 'llenergymeasure[plots]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def output_paths(out: Path) -> list[Path]:
    """``x.png`` / ``x.svg`` -> that file; no suffix -> both ``x.png`` and ``x.svg``."""
    suffix = out.suffix.lower()
    if suffix in (".png", ".svg"):
        return [out]
    if suffix:
        raise ConfigError(f"{out}: plots are written as .png or .svg (or no suffix for both)")
    return [out.with_suffix(".png"), out.with_suffix(".svg")]


def _save(fig: Any, out: Path) -> list[Path]:
    from llem_schema.atomic import atomic_write_bytes

    plt = _plt()
    paths = output_paths(out)
    for p in paths:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format=p.suffix[1:], dpi=150, bbox_inches="tight")
        atomic_write_bytes(p, buf.getvalue())
    plt.close(fig)
    return paths


def _phase_spans(t: list[float], phases: list[str]) -> list[tuple[str, float, float]]:
    """Contiguous (phase, start, end) runs of a time-ordered phase column."""
    spans: list[tuple[str, float, float]] = []
    for i, (ti, ph) in enumerate(zip(t, phases)):
        end = t[i + 1] if i + 1 < len(t) else ti
        if spans and spans[-1][0] == ph:
            spans[-1] = (ph, spans[-1][1], end)
        else:
            spans.append((ph, ti, end))
    return spans


def _legend_outside(ax: Any, **kwargs: Any) -> Any:
    """A legend to the right of the axes, never over the data (saving with
    bbox_inches="tight" keeps it in the file)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=8, **kwargs)


def power_figure(timeseries: Path, *, baseline_w: float | None = None,
                 title: str | None = None) -> Any:
    """Power of each GPU over time, phase bands behind it, the idle baseline as a line."""
    import pyarrow.parquet as pq

    if not timeseries.exists():
        raise ConfigError(f"{timeseries}: no power time series (no power meter on that host, "
                          "measurement.timeseries off, or the run did not finish)")
    try:
        table = pq.read_table(timeseries)
    except Exception as exc:
        raise ConfigError(f"{timeseries}: cannot read ({exc})") from None
    missing = {"t_s", "phase", "power_w", "gpu"} - set(table.column_names)
    if missing:
        raise ConfigError(f"{timeseries}: missing column(s) {sorted(missing)}")
    data = table.sort_by("t_s").to_pydict()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4))
    gpus = sorted(set(data["gpu"]))
    first = [i for i, g in enumerate(data["gpu"]) if g == gpus[0]] if gpus else []
    t0 = [data["t_s"][i] for i in first]
    seen: set[str] = set()
    for ph, a, b in _phase_spans(t0, [data["phase"][i] for i in first]):
        ax.axvspan(a, b, color=PHASE_COLORS.get(ph, "#f5f5f5"), alpha=0.5, lw=0,
                   label=ph if ph not in seen else None)
        seen.add(ph)
    for g in gpus:
        idx = [i for i, gg in enumerate(data["gpu"]) if gg == g]
        ax.plot([data["t_s"][i] for i in idx], [data["power_w"][i] for i in idx], lw=1,
                label=f"GPU {g}")
    if baseline_w is not None:
        ax.axhline(baseline_w, color="k", ls="--", lw=1, label=f"baseline {baseline_w:.0f} W")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("power (W)")
    ax.set_title(title or "power trace")
    _legend_outside(ax)
    return fig


def power_trace(timeseries: Path, out: Path, *, baseline_w: float | None = None,
                title: str | None = None) -> list[Path]:
    """:func:`power_figure`, written as PNG and/or SVG."""
    return _save(power_figure(timeseries, baseline_w=baseline_w, title=title), out)


def _has_range(ms: Any) -> bool:
    return ms.ci is None and ms.n_valid >= 2 and ms.range_low is not None


def _err(ms: Any) -> tuple[float, float]:
    """Distances below and above the mean: the CI where there is one, else the min-max
    range (below MIN_CYCLES cycles stats gives no CI), else none."""
    if ms.mean is None:
        return (0.0, 0.0)
    if ms.ci is not None:
        low, high = ms.ci.low, ms.ci.high
    elif _has_range(ms):
        low, high = ms.range_low, ms.range_high
    else:
        return (0.0, 0.0)
    return (max(0.0, ms.mean - low), max(0.0, high - ms.mean))


def _n_text(ns: set[int]) -> str:
    lo, hi = min(ns), max(ns)
    return f"n={lo}" if lo == hi else f"n={lo}-{hi}"


def interval_label(summaries: Sequence[Any]) -> str:
    """What the error bars are. "95% CI" only where it is one (stats gives a CI from
    MIN_CYCLES valid cycles); the min-max range of fewer cycles is called a range."""
    cis = [s for s in summaries if s.mean is not None and s.ci is not None]
    ranges = [s for s in summaries if s.mean is not None and _has_range(s)]
    parts = []
    if cis:
        levels = sorted({s.ci.level for s in cis})
        ci = "/".join(f"{lv:.0%}" for lv in levels) + " CI"
        parts.append(f"{ci} ({_n_text({s.n_valid for s in cis})})" if ranges else ci)
    if ranges:
        parts.append(f"range (min-max, {_n_text({s.n_valid for s in ranges})})")
    return "; ".join(parts) or "none (one value each)"


def _energy_caption(fig: Any, *keys: str) -> None:
    """Below the axes, one line saying whether a plotted energy per token is gross (idle
    power included) or idle-adjusted: the axis label alone does not say."""
    from llem.results import compare

    lines = [b for b in dict.fromkeys(compare.energy_basis(k) for k in keys) if b]
    if lines:
        fig.text(0.01, 0.0, "; ".join(lines), ha="left", va="top", fontsize=7,
                 color="#455a64")


def _candidates(summary: Any, x: str, y: str) -> list[Any]:
    return [c for c in summary.configs
            if c.metrics.get(x) and c.metrics.get(y)
            and c.metrics[x].mean is not None and c.metrics[y].mean is not None]


def pareto_figure(summary: Any, *, x: str = "energy_per_token",
                  y: str = "tokens_per_s") -> Any:
    """Every configuration's mean with its CI (or range) as error bars, the Pareto front
    as a line."""
    from llem.results import compare
    from llem.results import metrics as registry

    dx, dy = registry.metric(x), registry.metric(y)
    front = compare.pareto_configs(summary, x, y)  # raises why when nothing can be drawn
    cands = _candidates(summary, x, y)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    xs = [c.metrics[x].mean for c in cands]
    ys = [c.metrics[y].mean for c in cands]
    xerr = list(zip(*[_err(c.metrics[x]) for c in cands]))
    yerr = list(zip(*[_err(c.metrics[y]) for c in cands]))
    bars = interval_label([c.metrics[k] for c in cands for k in (x, y)])
    ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="o", ms=4, alpha=0.7, capsize=2,
                color="#1565c0", ecolor="#90a4ae",
                label=f"configuration: mean, bars = {bars}")
    fx = [c.metrics[x].mean for c in front]
    fy = [c.metrics[y].mean for c in front]
    ax.plot(fx, fy, "-s", color="#c62828", ms=6, label="Pareto front")
    if len(front) <= 12:
        mid = (min(xs) + max(xs)) / 2
        for c, a, b in zip(front, fx, fy):
            # labels point inwards so none runs out of the axes into the legend
            right = a <= mid
            ax.annotate(c.label, (a, b), fontsize=7, xytext=(4 if right else -4, 4),
                        textcoords="offset points", ha="left" if right else "right")
    ax.set_xlabel(f"{dx.label} ({dx.unit})")
    ax.set_ylabel(f"{dy.label} ({dy.unit})")
    ax.set_title(f"{summary.study_id or 'study'}: {dx.label} vs {dy.label}")
    _legend_outside(ax)
    _energy_caption(fig, x, y)
    return fig


def pareto_scatter(summary: Any, out: Path, *, x: str = "energy_per_token",
                   y: str = "tokens_per_s") -> list[Path]:
    """:func:`pareto_figure`, written as PNG and/or SVG."""
    return _save(pareto_figure(summary, x=x, y=y), out)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sort_key(v: Any) -> tuple[Any, ...]:
    """Numbers by value (8 before 16), then anything else in natural order ("b8" before
    "b16"): swept values must never be ordered as text."""
    import re

    if _is_number(v):
        return (0, float(v))
    parts = re.split(r"(\d+)", str(v))
    return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p))


def _swept(summary: Any, param: str) -> str:
    param = param.removeprefix("config.")
    swept = sorted({k for c in summary.configs for k in c.params})
    if param in swept:
        return param
    short = {k.split(".")[-1]: k for k in swept}
    if param in short:
        return short[param]
    from llem_schema.errors import did_you_mean

    raise ConfigError(f"'{param}' is not swept in this study"
                      f"{did_you_mean(param, swept)}; swept: {', '.join(swept) or 'none'}")


def _sweep_lines(summary: Any, param: str, metric_key: str
                 ) -> list[tuple[str, list[tuple[Any, Any]]]]:
    """(label of the other swept values, [(value of param, metric summary)]) per line, each
    line and the lines themselves in the numeric order of their values."""
    lines: dict[tuple[tuple[str, Any], ...], list[tuple[Any, Any]]] = {}
    for c in summary.configs:
        ms = c.metrics.get(metric_key)
        if ms is None or ms.mean is None:
            continue
        others = tuple((k, v) for k, v in c.params.items() if k != param)
        lines.setdefault(others, []).append((c.params[param], ms))
    out = []
    for others in sorted(lines, key=lambda o: tuple(sort_key(v) for _, v in o)):
        pts = sorted(lines[others], key=lambda p: sort_key(p[0]))
        out.append((", ".join(f"{k.split('.')[-1]}={v}" for k, v in others), pts))
    return out


def _x_axis(ax: Any, values: list[Any]) -> dict[Any, Any]:
    """Position of each swept value on x. Integers: ticks at the swept values only (log2
    spacing when they span 16x or more, as batch sizes do); text: evenly spaced, sorted."""
    from matplotlib.ticker import MaxNLocator, NullLocator

    uniq = sorted(set(values), key=sort_key)
    if not all(_is_number(v) for v in uniq):
        ax.set_xticks(range(len(uniq)), [str(v) for v in uniq])
        return {v: i for i, v in enumerate(uniq)}
    if all(isinstance(v, int) for v in uniq):
        if len(uniq) > 12:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            return {v: v for v in uniq}
        if uniq[0] > 0 and uniq[-1] / uniq[0] >= 16:
            ax.set_xscale("log", base=2)
        ax.set_xticks(uniq, [str(v) for v in uniq])
        ax.xaxis.set_minor_locator(NullLocator())
    return {v: v for v in uniq}


def sweep_figure(summary: Any, *, param: str, metric_key: str) -> Any:
    """One metric (mean, CI or range error bars) against one swept parameter; one line per
    value of the other swept parameters."""
    from llem.results import compare
    from llem.results import metrics as registry

    d = registry.metric(metric_key)
    param = _swept(summary, param)
    compare.require_values(summary, metric_key)
    lines = _sweep_lines(summary, param, metric_key)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pos = _x_axis(ax, [v for _, pts in lines for v, _ in pts])
    for label, pts in lines:
        errs = list(zip(*[_err(ms) for _, ms in pts]))
        ax.errorbar([pos[v] for v, _ in pts], [ms.mean for _, ms in pts], yerr=errs,
                    marker="o", capsize=3, label=label or "mean")
    bars = interval_label([ms for _, pts in lines for _, ms in pts])
    ax.set_xlabel(param)
    ax.set_ylabel(f"{d.label} ({d.unit})")
    ax.set_title(f"{summary.study_id or 'study'}: {d.label} vs {param.split('.')[-1]}")
    _legend_outside(ax, title=f"error bars: {bars}", title_fontsize=8)
    _energy_caption(fig, metric_key)
    return fig


def sweep_line(summary: Any, out: Path, *, param: str, metric_key: str) -> list[Path]:
    """:func:`sweep_figure`, written as PNG and/or SVG."""
    return _save(sweep_figure(summary, param=param, metric_key=metric_key), out)
