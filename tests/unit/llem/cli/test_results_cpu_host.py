"""`llem results` on results this CPU host produced with the embedded model (issue 16 C).

Energy is null here (no RAPL, no GPU), so the energy defaults of compare, pareto and the
plots have nothing to show: they fall back to the first metric with values and say so in
one stderr line; a null metric asked for by name fails with its recorded reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import llem
from llem.cli.results import app
from llem.results import io as results_io
from tests.conftest import quick_overrides

runner = CliRunner()


@pytest.fixture(scope="module")
def cpu_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(results dir, why energy is null) of a 2-config x 2-cycle study of the tiny model."""
    results_dir = tmp_path_factory.mktemp("cpu-results")
    study = llem.run_study({"name": "cpu-sweep", "model": "builtin:tiny-llama",
                            "sweep": {"workload.batch_size": [1, 2]},
                            "study": {"cycles": 2}}, results_dir, overrides=quick_overrides())
    assert study.ok
    results, _ = results_io.load_results(study.study_dir)
    if any(r.energy.per_output_token_j is not None for r in results):
        pytest.skip("this host measures energy (RAPL or a GPU): nothing falls back")
    return results_dir, results[0].energy.null_reasons["per_output_token_j"]


def _invoke(results_dir: Path, *args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, [*args, "--results-dir", str(results_dir)],
                        env={"COLUMNS": "100"})
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def _one_note(stderr: str, fallback: str, flag: str, why: str) -> None:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("note: energy_per_token has no values in the selected results")
    assert why in stderr and f"using {fallback} (choose with {flag})" in stderr


def test_compare_falls_back_to_a_metric_with_values(cpu_study: tuple[Path, str]) -> None:
    results_dir, why = cpu_study
    code, out, err = _invoke(results_dir, "compare", "cpu-sweep:e000", "cpu-sweep:e001")
    assert code == 0, err
    _one_note(err, "tokens_per_s", "--metric", why)
    assert "compare tokens_per_s: B / A" in out and "ratio B/A" in out


def test_compare_of_a_null_metric_asked_for_says_why(cpu_study: tuple[Path, str]) -> None:
    results_dir, why = cpu_study
    code, out, err = _invoke(results_dir, "compare", "cpu-sweep:e000", "cpu-sweep:e001",
                             "-m", "energy_per_token")
    assert code == 2 and not out
    assert err == f"error: no result has energy_per_token: null because {why}\n"


def test_pareto_falls_back_and_shows_a_front(cpu_study: tuple[Path, str]) -> None:
    results_dir, why = cpu_study
    code, out, err = _invoke(results_dir, "pareto", "cpu-sweep")
    assert code == 0, err
    _one_note(err, "ttft_p50", "--x", why)
    assert "TTFT p50 (min) vs output tokens / s (max)" in out
    assert "0 of 2" not in out and "batch_size=" in out


def test_an_empty_pareto_front_explains_why(cpu_study: tuple[Path, str]) -> None:
    results_dir, why = cpu_study
    code, out, err = _invoke(results_dir, "pareto", "cpu-sweep", "--x", "energy_per_token")
    assert code == 2 and "Pareto front" not in out
    assert err == f"error: no result has energy_per_token: null because {why}\n"


def test_plots_fall_back_to_a_metric_with_values(cpu_study: tuple[Path, str],
                                                 tmp_path: Path) -> None:
    results_dir, why = cpu_study
    code, _, err = _invoke(results_dir, "plot", "pareto", "cpu-sweep", "-o",
                             str(tmp_path / "p.png"))
    assert code == 0, err
    _one_note(err, "ttft_p50", "--x", why)
    assert (tmp_path / "p.png").stat().st_size > 1000
    code, _, err = _invoke(results_dir, "plot", "sweep", "cpu-sweep", "-p", "batch_size",
                             "-o", str(tmp_path / "s.png"))
    assert code == 0, err
    _one_note(err, "tokens_per_s", "--metric", why)
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_a_plot_of_a_null_metric_asked_for_says_why(cpu_study: tuple[Path, str],
                                                    tmp_path: Path) -> None:
    results_dir, why = cpu_study
    code, _, err = _invoke(results_dir, "plot", "sweep", "cpu-sweep", "-p", "batch_size",
                           "-m", "energy_per_pass", "-o", str(tmp_path / "s.png"))
    assert code == 2 and err == f"error: no result has energy_per_pass: null because {why}\n"


def test_show_lists_energy_per_pass_as_null_with_the_reason(cpu_study: tuple[Path, str]
                                                            ) -> None:
    results_dir, why = cpu_study
    code, out, _ = _invoke(results_dir, "show", "cpu-sweep", "-m", "energy_per_pass",
                           "-m", "tokens_per_s")
    assert code == 0 and "energy / workload pass" in out and "null" in out
    flat = " ".join(out.split())
    assert "not measured:" in flat and "energy_per_pass," in flat and why in flat
