"""The energy per token that `compare`, `pareto`, `plot pareto`, `plot sweep` and `results
show` use by default (issue 16 item 5): idle-adjusted where the results have an idle
baseline, gross where they have none, and one line saying which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llem.cli.results import app
from llem.results import export, plots
from tests.factories import make_study
from tests.table_text import rendered_headers

runner = CliRunner()
NO_BASELINE = "baseline disabled (measurement.baseline_seconds: 0)"


@pytest.fixture(scope="module")
def with_baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("baseline")
    make_study(root, "sweep-20260101-120000", batch_sizes=(1, 4), cycles=3)
    return root


@pytest.fixture(scope="module")
def without_baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("no-baseline")
    study = make_study(root, "sweep-20260101-120000", batch_sizes=(1, 4), cycles=3)
    for f in study.rglob("result.json"):
        d = json.loads(f.read_text())
        d["energy"].update(baseline_power_w=None, adjusted_j=None)
        d["energy"]["null_reasons"].update(baseline_power_w=NO_BASELINE, adjusted_j=NO_BASELINE)
        f.write_text(json.dumps(d))
    return root


def _invoke(results_dir: Path, *args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, [*args, "--results-dir", str(results_dir)],
                        env={"COLUMNS": "200"})
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


ADJUSTED_NOTE = ("note: energy per token is idle-adjusted (energy_per_token_adjusted: the "
                 "baseline's idle power x time subtracted)")
GROSS_NOTE = ("note: energy per token is gross (energy_per_token: idle power included); "
              f"no idle baseline: {NO_BASELINE}")


def _one_line(stderr: str, start: str) -> None:
    assert stderr.count("\n") == 1 and stderr.startswith(start), stderr


def test_compare_defaults_to_the_adjusted_energy_with_a_baseline(with_baseline: Path) -> None:
    code, out, err = _invoke(with_baseline, "compare", "sweep:e000", "sweep:e001")
    assert code == 0, err
    assert "compare energy_per_token_adjusted: B / A" in out
    _one_line(err, ADJUSTED_NOTE)
    assert "the gross with --metric energy_per_token" in err


def test_compare_defaults_to_the_gross_energy_without_one(without_baseline: Path) -> None:
    code, out, err = _invoke(without_baseline, "compare", "sweep:e000", "sweep:e001")
    assert code == 0, err
    assert "compare energy_per_token: B / A" in out
    _one_line(err, GROSS_NOTE)


def test_a_metric_asked_for_has_no_note(with_baseline: Path) -> None:
    code, out, err = _invoke(with_baseline, "compare", "sweep:e000", "sweep:e001",
                             "-m", "energy_per_token")
    assert code == 0 and "compare energy_per_token: B / A" in out and err == ""


@pytest.mark.parametrize(("fixture", "label", "note"), [
    ("with_baseline", "idle-adjusted energy / output token (min)", ADJUSTED_NOTE),
    ("without_baseline", "energy / output token (min)", GROSS_NOTE)])
def test_pareto_defaults(fixture: str, label: str, note: str,
                         request: pytest.FixtureRequest) -> None:
    code, out, err = _invoke(request.getfixturevalue(fixture), "pareto", "sweep")
    assert code == 0 and "Pareto front" in out and label in " ".join(out.split()), out
    _one_line(err, note)
    assert "--x energy_per_token" in err or "no idle baseline" in err


@pytest.mark.parametrize(("fixture", "key", "note"), [
    ("with_baseline", "energy_per_token_adjusted", ADJUSTED_NOTE),
    ("without_baseline", "energy_per_token", GROSS_NOTE)])
def test_plot_defaults(fixture: str, key: str, note: str, request: pytest.FixtureRequest,
                       tmp_path: Path) -> None:
    results_dir = request.getfixturevalue(fixture)
    code, out, err = _invoke(results_dir, "plot", "pareto", "sweep")
    assert code == 0, err
    _one_line(err, note)
    assert f"pareto-{key}-tokens_per_s.png" in out
    code, out, err = _invoke(results_dir, "plot", "sweep", "sweep", "-p", "batch_size")
    assert code == 0, err
    _one_line(err, note)
    assert f"sweep-batch_size-{key}.png" in out


def test_show_puts_the_adjusted_energy_first_with_a_baseline(with_baseline: Path,
                                                             without_baseline: Path) -> None:
    code, out, err = _invoke(with_baseline, "show", "sweep")
    assert code == 0, err
    assert rendered_headers(out)[2:4] == ["idle-adjusted energy / output token (J)",
                                          "energy / output token (J)"]
    _one_line(err, ADJUSTED_NOTE)
    code, out, err = _invoke(without_baseline, "show", "sweep")
    assert code == 0, err
    assert rendered_headers(out)[2] == "energy / output token (J)"
    _one_line(err, GROSS_NOTE)


def test_a_mixed_selection_uses_the_gross_energy(with_baseline: Path,
                                                 without_baseline: Path, tmp_path: Path) -> None:
    """One configuration without a baseline would drop out of an adjusted front."""
    import shutil

    study = tmp_path / "sweep-20260101-120000"
    shutil.copytree(with_baseline / study.name, study)
    e1 = next(p.name for p in study.iterdir() if p.name.startswith("e001"))
    shutil.rmtree(study / e1)
    shutil.copytree(without_baseline / study.name / e1, study / e1)
    code, out, err = _invoke(tmp_path, "pareto", "sweep")
    assert code == 0 and "energy / output token (min)" in out and "idle-adjusted" not in out
    _one_line(err, "note: energy per token is gross")
    assert "not every selected result has an idle baseline" in err


def test_figures_say_which_energy_per_token_they_plot(with_baseline: Path) -> None:
    summary = export.load_summary(with_baseline / "sweep-20260101-120000")

    def caption(fig: object) -> str:
        return " ".join(t.get_text() for t in fig.texts)  # type: ignore[attr-defined]

    fig = plots.pareto_figure(summary, x="energy_per_token_adjusted", y="tokens_per_s")
    assert "idle-adjusted" in caption(fig)
    fig = plots.sweep_figure(summary, param="batch_size", metric_key="energy_per_token")
    assert "gross" in caption(fig) and "idle power included" in caption(fig)
    fig = plots.sweep_figure(summary, param="batch_size", metric_key="tokens_per_s")
    assert caption(fig) == ""
