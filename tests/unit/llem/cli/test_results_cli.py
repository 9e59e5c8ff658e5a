"""`llem results ...` through typer's CliRunner on a results dir of synthetic results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from llem.cli.results import app
from tests.factories import make_result, make_study, write_result, write_timeseries

runner = CliRunner()


@pytest.fixture()
def results_dir(tmp_path: Path) -> Path:
    make_study(tmp_path, "sweep-20260101-120000", batch_sizes=(1, 4, 16), cycles=5)
    run = tmp_path / "quick-20260102-000000" / "e000-abcd1234" / "cycle-0"
    write_result(run, make_result(null={"latency.ttft": "offline batch: no streaming"}))
    write_timeseries(run)
    return tmp_path


def invoke(results_dir: Path, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, [*args, "--results-dir", str(results_dir)])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def test_list(results_dir: Path) -> None:
    code, out = invoke(results_dir, "list")
    assert code == 0
    assert "sweep-20260101" in out and "quick-20260102" in out and "15/15" in out


def test_show_run_lists_nulls_with_reasons(results_dir: Path) -> None:
    code, out = invoke(results_dir, "show", "quick")
    assert code == 0
    assert "TTFT p50" in out and "null" in out and "offline batch" in out


def test_show_study_has_cis(results_dir: Path) -> None:
    code, out = invoke(results_dir, "show", "sweep", "-m", "energy_per_token")
    assert code == 0
    assert "batch_size=16" in out and "[" in out and "n=5" in out


def test_compare_configs_in_a_study(results_dir: Path) -> None:
    code, out = invoke(results_dir, "compare", "sweep:e000", "sweep:e002", "-m",
                       "energy_per_token")
    assert code == 0
    assert "ratio B/A" in out and "significant" in out and "excludes 1" in out


def test_compare_needs_a_config_when_study_has_many(results_dir: Path) -> None:
    code, out = invoke(results_dir, "compare", "sweep", "quick")
    assert code == 2 and out.startswith("error: ") and "configurations" in out
    assert out.count("\n") == 1


def test_pareto(results_dir: Path) -> None:
    code, out = invoke(results_dir, "pareto", "sweep", "--x", "energy_per_token", "--y",
                       "tokens_per_s")
    assert code == 0 and "Pareto front" in out and "batch_size=16" in out


def test_aggregate_and_export(results_dir: Path, tmp_path: Path) -> None:
    code, out = invoke(results_dir, "aggregate", "sweep")
    assert code == 0 and "15 result(s), 3 configuration(s)" in out
    study = results_dir / "sweep-20260101-120000"
    assert pq.read_table(study / "study.parquet").num_rows == 15
    assert json.loads((study / "summary.json").read_text())["kind"] == "llem-study-summary"
    code, out = invoke(results_dir, "export", "-f", "csv", "-o", str(tmp_path / "all.csv"))
    assert code == 0 and "wrote 16 row(s)" in out
    code, _ = invoke(results_dir, "export", "sweep", "-f", "hf-dataset", "-o",
                     str(tmp_path / "hf"))
    assert code == 0 and (tmp_path / "hf" / "README.md").exists()


def test_plots(results_dir: Path, tmp_path: Path) -> None:
    code, out = invoke(results_dir, "plot", "power", "quick", "-o", str(tmp_path / "p"))
    assert code == 0, out
    assert (tmp_path / "p.png").stat().st_size > 1000 and (tmp_path / "p.svg").exists()
    code, out = invoke(results_dir, "plot", "pareto", "sweep", "-o", str(tmp_path / "f.svg"))
    assert code == 0 and (tmp_path / "f.svg").exists()
    code, out = invoke(results_dir, "plot", "sweep", "sweep", "-p", "workload.batch_size",
                       "-o", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").exists()
    code, out = invoke(results_dir, "plot", "sweep", "sweep", "-p", "batch_sise")
    assert code == 2 and "did you mean" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "nope"), "no study or run"),
        (("pareto", "sweep", "--x", "energy"), "unknown metric"),
        (("export", "-f", "xlsx"), "--format 'xlsx'"),
    ],
)
def test_errors_are_one_line_exit_2(results_dir: Path, args: tuple[str, ...],
                                    expected: str) -> None:
    code, out = invoke(results_dir, *args)
    assert code == 2 and out.startswith("error: ") and expected in out
    assert out.count("\n") == 1


def test_importing_the_sub_app_stays_light() -> None:
    code = ("import sys; import llem.cli.results; "
            "heavy = [m for m in ('pyarrow', 'scipy', 'numpy', 'matplotlib', 'torch') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=None).stdout.strip()
    assert out == "[]"
