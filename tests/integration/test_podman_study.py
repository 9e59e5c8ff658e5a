"""A tiny study through the podman runtime, for real (Debian podman, the CI CPU image).

Brought up by .ci/podman-setup.sh after .ci/integration-setup.sh; skipped with the reason
when podman or the test image is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llem_schema.version import SCHEMA_VERSION

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STATE = Path(os.environ.get("LLEM_IT_STATE", "/tmp/llem-it"))
SANDBOX = {
    # this sandbox: no systemd, no CAP_SYS_RESOURCE (see .ci/podman-setup.sh)
    "LLEM_PODMAN_GLOBAL_ARGS": "--runtime runc --cgroup-manager=cgroupfs",
    "LLEM_PODMAN_RUN_ARGS": "--ulimit nofile=1024:1024 --ulimit nproc=4096:4096",
}


def _env() -> dict[str, str] | None:
    f = STATE / "env"
    if not f.is_file():
        return None
    return dict(line.split("=", 1) for line in f.read_text().splitlines() if "=" in line)


def _skip_reason() -> str | None:
    if shutil.which("podman") is None:
        return "podman not installed (.ci/podman-setup.sh)"
    env = _env()
    if env is None:
        return f"{STATE}/env missing: run .ci/integration-setup.sh and .ci/podman-setup.sh"
    probe = subprocess.run(
        ["podman", *SANDBOX["LLEM_PODMAN_GLOBAL_ARGS"].split(), "image", "exists",
         env["LLEM_IT_IMAGE"]], capture_output=True,
    )
    if probe.returncode != 0:
        return f"{env['LLEM_IT_IMAGE']} not in podman's store: run .ci/podman-setup.sh"
    return None


_REASON = _skip_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)


def test_tiny_study_runs_through_podman(tmp_path: Path) -> None:
    env = _env()
    assert env is not None
    cfg = tmp_path / "study.yaml"
    cfg.write_text(
        "name: podman-tiny\nmodel: builtin:tiny-llama\n"
        "workload: {num_prompts: 2}\ndecoding: {max_new_tokens: 4}\n"
        "measurement: {baseline_seconds: 0, warmup_max_runs: 1, warmup_min_runs: 0, "
        "min_window_seconds: 0}\n"
        "sweep:\n  workload.batch_size: [1, 2]\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "llem.cli", "run", str(cfg), "--runtime", "podman",
         "--registry", env["LLEM_IT_OPEN_REGISTRY"], "--results-dir", str(tmp_path / "r"),
         "-q"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, **SANDBOX, "COLUMNS": "200", "HF_TOKEN": "hf_podman_SECRET"},
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    results = sorted((tmp_path / "r").rglob("result.json"))
    assert len(results) == 2
    from llem.results.io import load_result

    for f in results:
        r = load_result(f)
        assert r.environment.runtime == "podman"
        assert r.environment.image_ref == env["LLEM_IT_IMAGE"]
        assert r.environment.image_digest
        assert r.throughput.output_tokens and r.throughput.output_tokens > 0
        assert "hf_podman_SECRET" not in f.read_text()
        assert json.loads(f.read_text())["schema_version"] == SCHEMA_VERSION
    assert "hf_podman_SECRET" not in p.stdout + p.stderr
