"""Plots produce real PNG/SVG files (Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llem.results import io as results_io
from llem.results import plots, stats
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from tests.factories import make_result, make_study, write_timeseries


def _ok(p: Path) -> None:
    data = p.read_bytes()
    assert len(data) > 1000
    if p.suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        assert b"<svg" in data[:2000]


def test_power_trace_png_and_svg(tmp_path: Path) -> None:
    ts = write_timeseries(tmp_path / "run", gpus=2)
    paths = plots.power_trace(ts, tmp_path / "power", baseline_w=60.0)
    assert [p.suffix for p in paths] == [".png", ".svg"]
    for p in paths:
        _ok(p)


def test_power_trace_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no power time series"):
        plots.power_trace(tmp_path / "none.parquet", tmp_path / "x.png")
    with pytest.raises(ConfigError, match=r"\.png or \.svg"):
        plots.output_paths(tmp_path / "x.pdf")


def test_pareto_and_sweep(tmp_path: Path) -> None:
    study = make_study(tmp_path, batch_sizes=(1, 2, 4, 8), cycles=3)
    results, _ = results_io.load_results(study)
    summary = stats.summarise(results)
    _ok(plots.pareto_scatter(summary, tmp_path / "pareto.png")[0])
    _ok(plots.sweep_line(summary, tmp_path / "sweep.svg", param="batch_size",
                         metric_key="tokens_per_s")[0])
    one = stats.summarise([make_result()])
    with pytest.raises(ConfigError, match="not swept"):
        plots.sweep_line(one, tmp_path / "x.png", param="batch_size", metric_key="ttft_p50")


# ------------------------------------------------ what a reviewer reads off a figure


def _grid(cycles: int, batch_sizes: tuple[int, ...] = (16, 32, 8)) -> stats.StudySummary:
    """A batch_size x max_new_tokens study, configurations listed out of numeric order."""
    rs = []
    for i, bs in enumerate(batch_sizes):
        for j, mnt in enumerate((32, 8, 16)):
            cfg = ExperimentConfig.model_validate(
                {"workload": {"batch_size": bs}, "decoding": {"max_new_tokens": mnt}})
            rs += [make_result(config=cfg, cycle=c, seed=100 * i + 10 * j + c)
                   for c in range(cycles)]
    return stats.summarise(rs, n_resamples=200)


def _drawn(fig: Any) -> Any:
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _legend_clear_of_data(fig: Any) -> None:
    """The legend lies right of the axes, so it covers no data point or line."""
    renderer = _drawn(fig)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1
    for line in ax.get_lines():
        if len(line.get_xdata()):
            assert not legend.overlaps(line.get_window_extent(renderer))


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_sweep_orders_values_numerically_with_integer_ticks() -> None:
    fig = plots.sweep_figure(_grid(3), param="batch_size", metric_key="tokens_per_s")
    ax = fig.axes[0]
    _drawn(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "16", "32"]
    assert list(ax.get_lines()[0].get_xdata()) == [8, 16, 32]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["max_new_tokens=8", "max_new_tokens=16", "max_new_tokens=32"]
    _legend_clear_of_data(fig)
    _close(fig)


def test_sweep_of_a_wide_integer_range_has_only_integer_ticks() -> None:
    fig = plots.sweep_figure(_grid(2, batch_sizes=(1, 2, 4, 8, 16, 32, 64)),
                             param="workload.batch_size", metric_key="tokens_per_s")
    ax = fig.axes[0]
    _drawn(fig)
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["1", "2", "4", "8", "16", "32", "64"]
    assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
    _close(fig)


def test_sort_key_is_numeric_then_natural() -> None:
    assert sorted([16, 32, 8], key=plots.sort_key) == [8, 16, 32]
    assert sorted(["b16", "b8", "a"], key=plots.sort_key) == ["a", "b8", "b16"]
    assert sorted([2.5, "x", 1], key=plots.sort_key) == [1, 2.5, "x"]


def test_error_bars_say_ci_only_when_they_are_one() -> None:
    few = plots.sweep_figure(_grid(3), param="batch_size", metric_key="tokens_per_s")
    title = few.axes[0].get_legend().get_title().get_text()
    assert title == "error bars: range (min-max, n=3)" and "CI" not in title
    _close(few)
    many = plots.sweep_figure(_grid(5), param="batch_size", metric_key="tokens_per_s")
    assert many.axes[0].get_legend().get_title().get_text() == "error bars: 95% CI"
    _close(many)


def test_range_error_bars_span_min_to_max() -> None:
    s = _grid(3)
    ms = s.configs[0].metrics["tokens_per_s"]
    assert ms.ci is None
    low, high = plots._err(ms)
    assert ms.mean - low == pytest.approx(ms.range_low)
    assert ms.mean + high == pytest.approx(ms.range_high)


def test_pareto_labels_its_interval_and_keeps_the_legend_off_the_data() -> None:
    fig = plots.pareto_figure(_grid(3))
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "configuration: mean, bars = range (min-max, n=3)" in texts
    _legend_clear_of_data(fig)
    _close(fig)
    fig = plots.pareto_figure(_grid(5))
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "configuration: mean, bars = 95% CI" in texts
    _close(fig)


def test_interval_label_of_mixed_cycle_counts() -> None:
    s = _grid(5)
    few = _grid(2).configs[0].metrics["tokens_per_s"]
    label = plots.interval_label([s.configs[0].metrics["tokens_per_s"], few])
    assert label == "95% CI (n=5); range (min-max, n=2)"


def test_power_trace_legend_is_outside_the_axes(tmp_path: Path) -> None:
    ts = write_timeseries(tmp_path / "run", gpus=2)
    fig = plots.power_figure(ts, baseline_w=60.0)
    _legend_clear_of_data(fig)
    _close(fig)


def test_a_null_metric_explains_itself_instead_of_an_empty_plot() -> None:
    why = "no energy source on this CPU-only host"
    s = stats.summarise([make_result(cycle=c, null={"energy.per_output_token_j": why})
                         for c in range(2)])
    with pytest.raises(ConfigError, match=f"no result has energy_per_token: null because {why}"):
        plots.pareto_figure(s)
