"""One source of truth for where images live: images/matrix.yaml names the registry, the
release workflow pushes there, and the launcher pulls from there by default (issue 14).

The workflow is evaluated, not grepped: its own matrix-reading script runs against the real
matrix, and every ``${{ ... }}`` in its push targets is substituted from that script's outputs
and the matrix row. An expression from anywhere else (``github.repository_owner``, a
workflow ``env:``) has no value here and fails the test, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from llem.images import refs as images_refs
from llem.images.base import CPU
from llem.images.matrix import Matrix, llem_version, load_matrix
from llem.images.refs import image_ref, resolve_registry, split_ref
from llem_schema.errors import ConfigError

REPO = Path(__file__).resolve().parents[4]
WORKFLOW = REPO / ".github" / "workflows" / "images.yml"
EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


@pytest.fixture(autouse=True)
def _no_user_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLEM_REGISTRY", raising=False)
    monkeypatch.setattr(images_refs, "user_config_path", lambda: tmp_path / "none.yaml")


def _workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _matrix_outputs(wf: dict[str, Any]) -> dict[str, str]:
    """Run the workflow's own read-the-matrix step; its ``key=value`` lines, as GitHub would."""
    step = next(s for s in wf["jobs"]["matrix"]["steps"] if s.get("id") == "read")
    body = step["run"].split("<<'PY'", 1)[1].split("\n", 1)[1].rsplit("PY", 1)[0]
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    declared = wf["jobs"]["matrix"]["outputs"]
    for name, expr in declared.items():  # job outputs are the step's outputs, by name
        assert expr == f"${{{{ steps.read.outputs.{name} }}}}", name
        assert name in out, f"the matrix script prints no {name}="
    return {f"needs.matrix.outputs.{k}": out[k] for k in declared}


def _evaluate(text: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        assert key in values, (f"push target uses ${{{{ {key} }}}}, which images/matrix.yaml "
                               "does not define: take it from the matrix job's outputs")
        return values[key]

    return EXPR.sub(sub, text)


def _build_steps(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s.get("uses", s.get("name", "")).split("@")[0]: s for s in wf["jobs"]["build"]["steps"]}


def _push_targets(wf: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """Every place the build job names the image it pushes, evaluated for one matrix row."""
    steps = _build_steps(wf)
    return {
        "metadata images": _evaluate(steps["docker/metadata-action"]["with"]["images"], values),
        "recorded digest": _evaluate(steps["Record digest"]["env"]["IMAGE"], values),
        "attestation": _evaluate(
            steps["actions/attest-build-provenance"]["with"]["subject-name"], values),
    }


def test_matrix_names_a_fixed_registry_and_namespace() -> None:
    m = load_matrix()
    assert m.registry == "ghcr.io/llenergymeasure"
    assert "$" not in m.registry and "$" not in m.namespace
    assert split_ref(image_ref("pytorch", CPU, resolve_registry(), "1.0", m.namespace))[0] == \
        "ghcr.io/llenergymeasure/llenergymeasure/pytorch"


def test_workflow_pushes_where_the_launcher_pulls_by_default() -> None:
    wf = _workflow()
    outputs = _matrix_outputs(wf)
    matrix = load_matrix()
    version = outputs["needs.matrix.outputs.version"]
    assert version == llem_version()
    include = json.loads(outputs["needs.matrix.outputs.include"])
    assert len(include) == len(matrix.images)
    default = resolve_registry()
    for row in include:
        values = outputs | {f"matrix.{k}": str(v) for k, v in row.items()}
        launcher_ref = image_ref(row["backend"], row["cuda"], default,
                                 namespace=matrix.namespace)
        launcher_repo, launcher_tag, _ = split_ref(launcher_ref)
        for where, target in _push_targets(wf, values).items():
            assert target == launcher_repo, (where, target, launcher_repo)
        tags = _evaluate(_build_steps(wf)["docker/metadata-action"]["with"]["tags"], values)
        assert f"type=raw,value={launcher_tag}" in tags.splitlines()
        login = _build_steps(wf)["docker/login-action"]["with"]["registry"]
        assert _evaluate(login, values) == split_ref(launcher_ref)[0].split("/", 1)[0]


def test_workflow_takes_nothing_about_the_push_target_from_the_repository_owner() -> None:
    """The owner may appear only in the guard that checks the matrix against it."""
    wf = _workflow()
    text = WORKFLOW.read_text()
    assert "env" not in wf or not any("REGISTRY" in k or "NAMESPACE" in k for k in wf["env"])
    guard = [s for s in wf["jobs"]["matrix"]["steps"]
             if "github.repository_owner" in json.dumps(s)]
    assert len(guard) == 1 and "exit 1" in guard[0]["run"]
    assert text.count("github.repository_owner") == 1


def test_a_changed_matrix_registry_moves_both_sides(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Edit the one line: the launcher's default and the workflow's push target follow."""
    root = tmp_path / "repo"
    (root / "images").mkdir(parents=True)
    data = yaml.safe_load((REPO / "images" / "matrix.yaml").read_text())
    data["registry"] = "ghcr.io/someone-else"
    (root / "images" / "matrix.yaml").write_text(yaml.safe_dump(data))
    (root / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    monkeypatch.setenv("LLEM_IMAGE_MATRIX", str(root / "images" / "matrix.yaml"))
    assert resolve_registry() == "ghcr.io/someone-else"
    wf = _workflow()
    step = next(s for s in wf["jobs"]["matrix"]["steps"] if s.get("id") == "read")
    body = step["run"].split("<<'PY'", 1)[1].split("\n", 1)[1].rsplit("PY", 1)[0]
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], cwd=root,
                       capture_output=True, text=True, timeout=60)
    assert "image_prefix=ghcr.io/someone-else/llenergymeasure" in r.stdout.splitlines()


def test_registry_precedence_ends_at_the_matrix(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    m = Matrix.model_validate({"registry": "reg.example/org", "images": []})
    assert resolve_registry(matrix=m) == "reg.example/org"
    (tmp_path / "none.yaml").write_text("registry: cfg.example:5000\n")
    assert resolve_registry(matrix=m) == "cfg.example:5000"
    monkeypatch.setenv("LLEM_REGISTRY", "env.example/")
    assert resolve_registry(matrix=m) == "env.example"
    assert resolve_registry("cli.example", matrix=m) == "cli.example"
    # a mirror keeps the namespace: <mirror>/llenergymeasure/<backend>
    assert image_ref("pytorch", CPU, "cli.example", "1.0") == \
        "cli.example/llenergymeasure/pytorch:1.0-cpu"


@pytest.mark.parametrize("bad", ["", "ghcr.io/ org", "user:pw@ghcr.io/org", "ghcr.io//x"])
def test_matrix_registry_must_be_a_plain_prefix(bad: str, tmp_path: Path) -> None:
    from llem.images.matrix import load_matrix as load

    data = yaml.safe_load((REPO / "images" / "matrix.yaml").read_text())
    data["registry"] = bad
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="not a valid image matrix"):
        load(p)


def test_the_user_config_file_is_documented_where_users_look() -> None:
    """`llem config --help` and docs/docker.md name the file and its registry: key."""
    r = subprocess.run([sys.executable, "-m", "llem.cli", "config", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "user_config_dir('llem')/config.yaml" in text and "'registry: HOST[/PATH]'" in text
    docs = (REPO / "docs" / "docker.md").read_text()
    assert 'user_config_dir("llem")' in docs and "registry: registry.lab:5000" in docs
