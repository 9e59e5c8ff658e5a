"""Terminal tables at 80 columns (issue 16 F) and per-pass energy in them (issue 16 A)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from llem.results import io as results_io
from llem.results import metrics, stats, tables
from llem.results.display import Col, fit_table, hidden_note, result_table
from tests.factories import make_result, make_study
from tests.table_text import rendered_headers, widest_line


def _text(renderable: object, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_fit_table_never_splits_a_word_and_drops_by_priority() -> None:
    cols = [Col("configuration"), Col("kind", drop=2), Col("idle-adjusted energy\n(J)"),
            Col("created (UTC)", drop=1), Col("model", fold=True)]
    rows = [["batch_size=16", "study", "1.234e-03", "01-01 12:00", "/models/" + "x" * 40]]
    table, hidden = fit_table(cols, rows, 60)
    text = _text(table)
    assert hidden == ["created (UTC)"]  # drop=1 goes first; then it fits
    assert rendered_headers(text) == ["configuration", "kind", "idle-adjusted energy (J)",
                                      "model"]
    assert widest_line(text) <= 60
    assert "batch_size=16" in text  # whole, not folded
    wide, none_hidden = fit_table(cols, rows, 200)
    assert none_hidden == [] and len(wide.columns) == 5
    assert hidden_note([], 80) is None
    assert "left out at 60 columns: created (UTC)" in (hidden_note(hidden, 60) or "")


@pytest.fixture()
def summary(tmp_path: Path) -> stats.StudySummary:
    study = make_study(tmp_path, batch_sizes=(1, 4, 16), cycles=5)
    return stats.summarise(results_io.load_results(study)[0])


def test_summary_table_reads_at_80_columns(summary: stats.StudySummary) -> None:
    keys = metrics.default_keys()
    table, hidden = tables.summary_table(summary, keys, 80)
    text = _text(table)
    headers = rendered_headers(text)
    assert headers[:2] == ["configuration", "ok/runs"]
    shown = [f"{metrics.metric(k).label} ({metrics.metric(k).unit})" for k in keys]
    assert headers[2:] == [h for h in shown if h not in hidden]
    assert hidden and all(h in shown for h in hidden)  # 7 metrics cannot all fit in 80
    assert widest_line(text) <= 80
    assert "…" not in text


def test_summary_table_drops_all_null_metrics_first(tmp_path: Path) -> None:
    why = "no energy source on this CPU-only host"
    rs = [make_result(cycle=c, null={"energy.per_output_token_j": why}) for c in range(3)]
    s = stats.summarise(rs)
    _, hidden = tables.summary_table(s, metrics.default_keys(), 80)
    assert hidden[0].startswith("energy / output token")  # first in the list, but all null
    _, wide = tables.summary_table(s, metrics.default_keys(), 400)
    assert wide == []


def test_default_show_metrics_use_energy_per_pass_not_the_window_total() -> None:
    keys = metrics.default_keys()
    assert "energy_per_pass" in keys and "total_energy" not in keys
    assert "total_energy" in metrics.METRICS  # still there with -m
    assert "window" in metrics.METRICS["total_energy"].label


def test_run_tables_show_energy_per_pass_and_the_window_total() -> None:
    r = make_result(set={"energy.total_j": 300.0, "setup.measured_passes": 3})
    text = _text(tables.run_table(r, 100), 100)
    assert re.search(r"energy / workload pass\s*│\s*100\s*│ J", text)
    assert re.search(r"window total energy\s*│\s*300\s*│ J\s*│ 3 pass\(es\) in the window", text)
    text = _text(result_table(r), 120)
    assert re.search(r"energy / pass\s*│\s*100 J", text)
    assert re.search(r"window energy\s*│\s*300 J\s*│ 3 pass\(es\)", text)


def test_run_table_reads_at_80_columns() -> None:
    r = make_result(null={"latency.ttft": "offline batch: no streaming"})
    text = _text(tables.run_table(r, 80))
    assert rendered_headers(text) == ["metric", "value", "unit", "note / reason it is null"]
    assert widest_line(text) <= 80 and "offline batch: no streaming" in text


H100_STUDY = (Path(__file__).resolve().parents[4] / "benchmarks" / "results" / "h100-batch-study"
              / "h100-batch-study-20261123-065358")


def test_committed_h100_study_shows_ranges_and_the_adjusted_energy_per_token() -> None:
    """Issue 16's acceptance: 3 cycles a configuration, so no "95% CI" anywhere, every spread
    a range, and the idle-adjusted J/token beside the gross one with its own range."""
    results, _ = results_io.load_results(H100_STUDY)
    s = stats.summarise(results)
    keys = ["energy_per_token", "energy_per_token_adjusted", "tokens_per_s", "tokens_per_joule"]
    table, hidden = tables.summary_table(s, keys, 160)
    text = _text(table, 160)
    assert hidden == [] and "CI]" not in text and "percentile CI" not in text
    assert "mean and range across cycles (a 95% CI needs >= 5 cycles)" in text
    assert text.count("range ") == 2 * len(keys) + 1  # one per cell, one in the caption
    for c in s.configs:
        adj = c.metrics["energy_per_token_adjusted"]
        assert adj.ci is None and adj.n_valid == 3 and adj.range_low < adj.range_high
        assert f"range {tables.fmt(adj.range_low)} to {tables.fmt(adj.range_high)}" in text
    # batch 32 / batch 8: 0.22 gross, 0.55 adjusted (docs/methodology.md)
    gross, adj = ([c.metrics[k].mean for c in s.configs] for k in keys[:2])
    assert gross[1] / gross[0] == pytest.approx(0.22, abs=0.005)
    assert adj[1] / adj[0] == pytest.approx(0.55, abs=0.005)


def test_summary_title_says_ci_only_where_one_is_shown(summary: stats.StudySummary,
                                                       tmp_path: Path) -> None:
    def words(s: stats.StudySummary) -> str:
        return " ".join(_text(tables.summary_table(s, ["tokens_per_s"], 120)[0], 120).split())

    five = words(summary)
    assert "mean [95% CI] across cycles" in five and "range" not in five
    mixed = stats.summarise(
        [*results_io.load_results(make_study(tmp_path / "a", batch_sizes=(1,), cycles=5))[0],
         *results_io.load_results(make_study(tmp_path / "b", batch_sizes=(4,), cycles=3))[0]])
    text = words(mixed)
    assert "mean [95% CI] across cycles; below 5 cycles the range, not a CI" in text
    assert "range: min to max of fewer than 5 cycles" in text
