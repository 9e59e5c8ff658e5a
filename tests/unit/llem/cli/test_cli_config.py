"""`llem config new|show|schema` and `llem --version`, through the real entry point."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from llem import __version__
from llem_schema.version import SCHEMA_VERSION
from tests.conftest import llem_cmd, subprocess_env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*llem_cmd(), *args], capture_output=True, text=True,
                          env=subprocess_env() | {"COLUMNS": "200"}, timeout=60)


def test_version() -> None:
    p = _run("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"llem {__version__}"


def test_new_templates_validate(tmp_path: Path) -> None:
    for flag, kind in (([], "experiment"), (["--study"], "study")):
        out = tmp_path / f"{kind}.yaml"
        assert _run("config", "new", "-o", str(out), *flag).returncode == 0
        p = _run("config", "validate", str(out))
        assert p.returncode == 0 and f"valid {kind}" in p.stdout, p.stderr
    again = _run("config", "new", "-o", str(tmp_path / "experiment.yaml"))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_show_reports_sources(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("preset: quick-test\nworkload: {batch_size: 3}\n")
    p = _run("config", "show", str(f), "--model", "builtin:llama-1.1b")
    assert p.returncode == 0, p.stderr
    rows = {ln.split("│")[1].strip(): ln for ln in p.stdout.splitlines() if ln.count("│") >= 3}
    assert "file" in rows["workload.batch_size"]
    assert "preset:quick-test" in rows["workload.num_prompts"]
    assert "cli" in rows["model"] and "default" in rows["decoding.strategy"]


def test_schema_prints_json_schema() -> None:
    p = _run("config", "schema", "result")
    assert p.returncode == 0
    doc = json.loads(p.stdout)
    assert doc["title"] == "ExperimentResult" and doc["x-schema-version"] == SCHEMA_VERSION
    assert _run("config", "schema", "nope").returncode == 2
