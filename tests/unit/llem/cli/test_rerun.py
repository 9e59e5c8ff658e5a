"""``llem rerun`` end to end through the real CLI (a subprocess, as a user runs it) on the
local runtime with ``builtin:tiny-llama``: what it prints, where it writes, how it refuses."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import llem
from llem_schema.result import ExperimentResult
from tests.conftest import llem_cmd, quick_overrides, subprocess_env

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("orig")
    r = llem.run_experiment({"name": "rr-cli", "model": "builtin:tiny-llama",
                             "decoding": {"seed": 7}, "workload": {"seed": 11}},
                            results, overrides=quick_overrides())
    (path,) = results.glob(f"{r.study_id}/*/cycle-0/result.json")
    return path


def _llem(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*llem_cmd(), *args], capture_output=True, text=True,
                          env=env or subprocess_env(), timeout=300)


def _as_if_from_an_image(original: Path, tmp_path: Path) -> Path:
    """A copy of the original's study whose result says it ran in an image with an older
    torch: the environment is outside the config hash, so it is still a valid rerun source."""
    study = tmp_path / "copied" / original.parents[2].name
    shutil.copytree(original.parents[2], study)
    path = study / original.relative_to(original.parents[2])
    data = json.loads(path.read_text())
    data["environment"] |= {"runtime": "docker", "image_digest": DIGEST,
                            "image_ref": "127.0.0.1:5000/llenergymeasure/pytorch:0.1.0-cpu"}
    data["environment"]["packages"]["torch"] = "0.0.1"
    path.write_text(json.dumps(data))
    return path


def test_rerun_locally_prints_differences_and_compares(original: Path, tmp_path: Path) -> None:
    source = _as_if_from_an_image(original, tmp_path)
    untouched = source.read_bytes()
    results = tmp_path / "results"
    p = _llem("rerun", str(source), "--runtime", "local", "--results-dir", str(results), "-q",
              "--compare", "-m", "tokens_per_s", "-m", "energy_per_token")
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    orig = ExperimentResult.model_validate_json(original.read_text())
    assert f"config hash {orig.config_hash}: recomputed from the recorded config, it matches" \
        in out
    assert "seeds: decoding.seed=7 workload.seed=11 workload.traffic.seed=0" in out
    assert f"note: image digest {DIGEST} is not applied" in out
    before = out.split("environment before the run", 1)[1].split("environment after", 1)[0]
    assert "  runtime: docker -> local" in before
    assert f"  image_digest: {DIGEST} -> (none)" in before
    assert f"  packages.torch: 0.0.1 -> {orig.environment.packages['torch']}" in before
    after = out.split("environment after the run", 1)[1]
    assert "  runtime: docker -> local" in after and "  packages.torch: 0.0.1 -> " in after
    assert "config hash, seeds: same as the original" in out
    # --compare: the statistic of `llem results compare`, one row per measured metric
    assert "compare: rerun / original" in out and "tokens_per_s" in out
    assert "energy_per_token: not measured: original: no energy source" in out
    (new_study,) = [d for d in results.iterdir() if d.is_dir()]
    assert f"rerun: {new_study}" in out
    (new_file,) = new_study.glob("*/cycle-0/result.json")
    new = ExperimentResult.model_validate_json(new_file.read_text())
    assert new.config_hash == orig.config_hash
    assert (new.config.decoding.seed, new.config.workload.seed) == (7, 11)
    assert new.environment.runtime == "local"
    assert json.loads((new_study / "rerun.json").read_text())["original"] == \
        str(source.resolve())
    assert source.read_bytes() == untouched  # the original is never written to
    assert not list(source.parents[2].glob("rerun-*"))


def _one_line_exit_2(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_tampered_config_hash_exits_2(original: Path, tmp_path: Path) -> None:
    data = json.loads(original.read_text())
    data["config_hash"] = "0123456789abcdef"
    bad = tmp_path / "result.json"
    bad.write_text(json.dumps(data))
    results = tmp_path / "results"
    p = _llem("rerun", str(bad), "--results-dir", str(results))
    _one_line_exit_2(p, "config_hash 0123456789abcdef does not match")
    assert not results.exists()


def test_missing_file_exits_2(tmp_path: Path) -> None:
    _one_line_exit_2(_llem("rerun", str(tmp_path / "none.json")), "file not found")


def test_unknown_metric_exits_2_before_running(original: Path, tmp_path: Path) -> None:
    p = _llem("rerun", str(original), "--compare", "-m", "joules", "--results-dir",
              str(tmp_path / "r"))
    _one_line_exit_2(p, "unknown metric 'joules'")
    assert not (tmp_path / "r").exists()


def test_image_result_without_a_daemon_exits_2(original: Path, tmp_path: Path) -> None:
    env = subprocess_env() | {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    p = _llem("rerun", str(_as_if_from_an_image(original, tmp_path)), "--results-dir",
              str(tmp_path / "r"), env=env)
    _one_line_exit_2(p, "cannot reach the Docker daemon")
    assert not (tmp_path / "r").exists()
