"""Tables at COLUMNS=80 (issue 16 F): every header word whole, nothing wider than the
terminal, and a column left out for room is named in a note."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llem.cli import images as images_cli
from llem.cli import run as run_cli
from llem.cli.results import app as results_app
from llem.images.base import ImageError
from llem.results import metrics
from tests.conftest import llem_cmd, subprocess_env
from tests.factories import make_result, make_study, write_result
from tests.table_text import rendered_headers, widest_line

REPO = Path(__file__).resolve().parents[4]
runner = CliRunner()


def _at_80(app: Any, *args: str) -> str:
    res = runner.invoke(app, list(args), env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    return res.stdout


def test_results_list_at_80_columns(tmp_path: Path) -> None:
    make_study(tmp_path, "gpu-efficiency-study-20260101-120000", batch_sizes=(1, 4), cycles=2)
    write_result(tmp_path / "quick-20260102-000000" / "e000-abcd1234" / "cycle-0",
                 make_result())
    out = _at_80(results_app, "list", "--results-dir", str(tmp_path))
    # a 36-character id leaves no room for the two lowest-priority columns
    assert rendered_headers(out) == ["id", "exps", "runs done", "failed", "status"]
    assert "gpu-efficiency-study-20260101-120000" in out  # ids are never folded
    assert widest_line(out) <= 80
    assert "left out at 80 columns: kind; created (UTC)" in out
    wide = runner.invoke(results_app, ["list", "--results-dir", str(tmp_path)],
                         env={"COLUMNS": "160"}).stdout
    assert rendered_headers(wide) == ["id", "kind", "exps", "runs done", "failed", "status",
                                      "created (UTC)"]
    assert "left out" not in wide


def test_results_show_study_at_80_columns(tmp_path: Path) -> None:
    make_study(tmp_path, "sweep-20260101-120000", batch_sizes=(1, 4, 16), cycles=5)
    out = _at_80(results_app, "show", "sweep", "--results-dir", str(tmp_path))
    headers = rendered_headers(out)
    # the results have an idle baseline: the adjusted J/token leads, the gross follows
    assert headers[:4] == ["configuration", "ok/runs", "idle-adjusted energy / output token (J)",
                           "energy / output token (J)"]
    flat = " ".join(out.split())
    note = flat[flat.index("left out at 80 columns: "):].split(": ", 1)[1].split(" (a wider")[0]
    keys = metrics.default_keys()
    keys.insert(0, keys.pop(keys.index(metrics.ENERGY_ADJUSTED)))
    labels = [f"{metrics.metric(k).label} ({metrics.metric(k).unit})" for k in keys]
    assert headers[2:] + note.split("; ") == labels  # each shown whole or named as left out
    assert "energy / workload pass (J)" in labels and "window total" not in flat
    assert widest_line(out) <= 80 and "pick metrics with -m" in flat


def test_images_list_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_daemon(timeout: int = 60) -> Any:
        raise ImageError("no docker daemon")

    monkeypatch.setattr("llem.images.registry.docker_client", no_daemon)
    out = _at_80(images_cli.app, "list")
    assert rendered_headers(out) == ["backend", "cuda", "tag", "local digest"]
    assert "(no daemon)" in out and widest_line(out) <= 80
    assert "left out at 80 columns: base image" in " ".join(out.split())
    assert "llenergymeasure/<backend>:<tag>" in out


def test_images_table_shortens_digests_and_keeps_the_base_image_when_wide() -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    rows = [("pytorch", "12", "llenergymeasure/pytorch:0.1.0-cuda12",
             "pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime", digest)]
    table, hidden = images_cli.images_table(rows, 160)
    assert hidden == [] and [c.header for c in table.columns][3] == "base image"
    cells = [c._cells[0] for c in table.columns]
    assert cells[2] == "0.1.0-cuda12" and cells[4] == "sha256:0123456789ab"


def test_short_names_tell_swept_paths_apart() -> None:
    assert run_cli.short_names(["workload.batch_size", "decoding.max_new_tokens"]) == [
        "batch_size", "max_new_tokens"]
    assert run_cli.short_names(["pytorch.dtype", "vllm.dtype", "workload.seed"]) == [
        "pytorch.dtype", "vllm.dtype", "seed"]


def test_run_dry_run_at_80_columns() -> None:
    p = subprocess.run([*llem_cmd(), "run", str(REPO / "examples" / "sweep.yaml"), "--dry-run"],
                       capture_output=True, text=True, timeout=60,
                       env={**subprocess_env(), "COLUMNS": "80"})
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert rendered_headers(out) == ["experiment", "backend", "model", "batch_size",
                                     "max_new_tokens"]
    assert "e000-" in out and "builtin:tiny-llama" in out and widest_line(out) <= 80
    assert "swept: workload.batch_size, decoding.max_new_tokens" in out
    assert "left out at 80 columns: config hash" in out and "9 experiments" in out
