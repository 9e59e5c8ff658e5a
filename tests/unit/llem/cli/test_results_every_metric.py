"""Every metric of the registry reaches `results show`, `compare`, `pareto` and both study
plots (issue 16 item 5: those commands accepted only 5 metrics; the idle-adjusted J/token,
tokens per joule and energy per pass were nowhere to be asked for)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llem.cli.results import app
from llem.results.metrics import METRICS
from tests.factories import make_study

runner = CliRunner()


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("every-metric")
    make_study(root, "sweep-20260101-120000", batch_sizes=(1, 4, 16), cycles=5)
    return root


def invoke(results_dir: Path, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, [*args, "--results-dir", str(results_dir)],
                        env={"COLUMNS": "200"})
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


@pytest.mark.parametrize("key", list(METRICS))
def test_every_registry_metric_is_accepted_everywhere(key: str, results_dir: Path,
                                                      tmp_path: Path) -> None:
    m = METRICS[key]
    code, out = invoke(results_dir, "show", "sweep", "-m", key)
    assert code == 0 and m.label in out, out
    code, out = invoke(results_dir, "compare", "sweep:e000", "sweep:e002", "-m", key)
    assert code == 0 and f"compare {key}" in out and "ratio B/A" in out, out
    other = "tokens_per_s" if key != "tokens_per_s" else "energy_per_token"
    code, out = invoke(results_dir, "pareto", "sweep", "--x", key, "--y", other)
    assert code == 0 and "Pareto front" in out, out
    code, out = invoke(results_dir, "plot", "pareto", "sweep", "--x", key, "--y", other,
                       "-o", str(tmp_path / "p.svg"))
    assert code == 0 and (tmp_path / "p.svg").exists(), out
    code, out = invoke(results_dir, "plot", "sweep", "sweep", "-p", "workload.batch_size",
                       "-m", key, "-o", str(tmp_path / "s.svg"))
    assert code == 0 and (tmp_path / "s.svg").exists(), out
