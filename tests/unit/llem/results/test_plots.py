"""Plots produce real PNG/SVG files (Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.results import io as results_io
from llem.results import plots, stats
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
