"""Figures for papers: power trace of a run, energy/token vs throughput Pareto, sweeps.

matplotlib with the Agg backend (no display needed, works on clusters); every figure is
written as PNG and/or SVG depending on the output suffix (no suffix: both). matplotlib is
the ``[plots]`` extra; a missing install is one line naming the extra.
"""

from __future__ import annotations

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


def power_trace(timeseries: Path, out: Path, *, baseline_w: float | None = None,
                title: str | None = None) -> list[Path]:
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
    ax.legend(loc="upper right", fontsize=8, ncol=2)
    return _save(fig, out)


def _err(ms: Any) -> tuple[float, float]:
    if ms.ci is None or ms.mean is None:
        return (0.0, 0.0)
    return (max(0.0, ms.mean - ms.ci.low), max(0.0, ms.ci.high - ms.mean))


def pareto_scatter(summary: Any, out: Path, *, x: str = "energy_per_token",
                   y: str = "tokens_per_s") -> list[Path]:
    """Every configuration's mean with its CI as error bars, the Pareto front as a line."""
    from llem.results import compare
    from llem.results import metrics as registry

    dx, dy = registry.metric(x), registry.metric(y)
    cands = [c for c in summary.configs
             if c.metrics.get(x) and c.metrics.get(y)
             and c.metrics[x].mean is not None and c.metrics[y].mean is not None]
    if not cands:
        raise ConfigError(f"no configuration has both {x} and {y}")
    front = compare.pareto_configs(summary, x, y)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    xs = [c.metrics[x].mean for c in cands]
    ys = [c.metrics[y].mean for c in cands]
    xerr = list(zip(*[_err(c.metrics[x]) for c in cands]))
    yerr = list(zip(*[_err(c.metrics[y]) for c in cands]))
    ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="o", ms=4, alpha=0.7, capsize=2,
                color="#1565c0", ecolor="#90a4ae", label="configuration (mean, 95% CI)")
    fx = [c.metrics[x].mean for c in front]
    fy = [c.metrics[y].mean for c in front]
    ax.plot(fx, fy, "-s", color="#c62828", ms=6, label="Pareto front")
    if len(front) <= 12:
        for c, a, b in zip(front, fx, fy):
            ax.annotate(c.label, (a, b), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(f"{dx.label} ({dx.unit})")
    ax.set_ylabel(f"{dy.label} ({dy.unit})")
    ax.set_title(f"{summary.study_id or 'study'}: {dx.label} vs {dy.label}")
    ax.legend(fontsize=8)
    return _save(fig, out)


def sweep_line(summary: Any, out: Path, *, param: str, metric_key: str) -> list[Path]:
    """One metric (mean, CI error bars) against one swept parameter; one line per value of
    the other swept parameters."""
    from llem.results import metrics as registry

    d = registry.metric(metric_key)
    param = param.removeprefix("config.")
    swept = sorted({k for c in summary.configs for k in c.params})
    if param not in swept:
        from llem_schema.errors import did_you_mean

        short = {k.split(".")[-1]: k for k in swept}
        if param in short:
            param = short[param]
        else:
            raise ConfigError(f"'{param}' is not swept in this study"
                              f"{did_you_mean(param, swept)}; swept: {', '.join(swept) or 'none'}")
    lines: dict[str, list[Any]] = {}
    for c in summary.configs:
        ms = c.metrics.get(metric_key)
        if ms is None or ms.mean is None:
            continue
        others = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in c.params.items() if k != param)
        lines.setdefault(others, []).append((c.params[param], ms))
    if not lines:
        raise ConfigError(f"no configuration has a value of {metric_key}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, pts in sorted(lines.items()):
        try:
            pts.sort(key=lambda p: p[0])
        except TypeError:
            pts.sort(key=lambda p: str(p[0]))
        xs = [p[0] if isinstance(p[0], (int, float)) else str(p[0]) for p in pts]
        errs = list(zip(*[_err(p[1]) for p in pts]))
        ax.errorbar(xs, [p[1].mean for p in pts], yerr=errs, marker="o", capsize=3,
                    label=label or None)
    ax.set_xlabel(param)
    ax.set_ylabel(f"{d.label} ({d.unit})")
    ax.set_title(f"{summary.study_id or 'study'}: {d.label} vs {param.split('.')[-1]}")
    if any(lines):
        ax.legend(fontsize=7)
    return _save(fig, out)
