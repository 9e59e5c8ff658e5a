"""PodmanRuntime against a stand-in ``podman`` on PATH (no podman/images/GPUs here).

The stand-in records its argv and answers ``info``/``image`` queries with podman's JSON
shapes; ``run`` executes the bind-mounted run dir's harness locally (fake harness), so the
runtime's whole path (command, wait, digest lookup, outcome) is exercised.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from llem.runtimes.base import RunRequest
from llem.runtimes.podman import PodmanRuntime

FAKE_HARNESS = Path(__file__).resolve().parents[3] / "fixtures" / "fake_harness.py"

PODMAN = r'''#!/usr/bin/env python3
import json, os, subprocess, sys
args = sys.argv[1:]
while args and args[0].startswith("--"):  # global flags (LLEM_PODMAN_GLOBAL_ARGS)
    flag = args.pop(0)
    if "=" not in flag and args and not args[0].startswith("--"):
        args.pop(0)
with open(os.environ["PODMAN_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
if args[:1] == ["info"]:
    print(json.dumps({"host": {"security": {"rootless": True}, "cgroupVersion": "v2"},
                      "version": {"Version": "4.3.1"}}))
elif args[:2] == ["image", "inspect"]:
    print(json.dumps([{"Id": "abc", "RepoDigests": ["r/llem@sha256:" + "1" * 64]}]))
elif args[:2] == ["image", "exists"]:
    sys.exit(1)
elif args[:1] == ["run"]:
    vol = [args[i + 1] for i, a in enumerate(args) if a == "-v"][0]
    host = vol.split(":")[0]
    sys.exit(subprocess.call([os.environ["FAKE_HARNESS"], "-m", "llem_harness", host]))
'''


@pytest.fixture
def fake_podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "podman"
    exe.write_text(PODMAN)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "podman.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PODMAN_LOG", str(log))
    monkeypatch.setenv("FAKE_HARNESS", str(FAKE_HARNESS))
    monkeypatch.setenv("LLEM_FAKE_COUNTER", str(tmp_path / "count.log"))
    return log


def test_podman_run_uses_cdi_keep_id_and_hides_secrets(tmp_path: Path, fake_podman: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from llem.study.rundir import read_result, write_spec
    from llem_schema.config import ExperimentConfig
    from llem_schema.runspec import RunSpec

    assert PodmanRuntime.available() == (True, "")
    cfg = ExperimentConfig(model="builtin:tiny-llama")
    run_dir = tmp_path / "s" / "e000" / "cycle-0"
    write_spec(run_dir, RunSpec(experiment_id="e000", run_id="s/e000/cycle-0", study_id="s",
                                config=cfg, config_hash=cfg.config_hash(), runtime="podman"))
    rt = PodmanRuntime(image="r/llem/pytorch:0.1.0-cuda12")
    rt.ensure_image(None)
    out = rt.run(RunRequest(run_dir=run_dir, backend="pytorch", gpus=[0, "GPU-x"],
                            env={"HF_TOKEN": "s3cret"}))
    assert out.exit_code == 0 and out.image_digest == "sha256:" + "1" * 64
    read_result(run_dir)
    calls = [json.loads(line) for line in fake_podman.read_text().splitlines()]
    assert ["pull", "--quiet", "r/llem/pytorch:0.1.0-cuda12"] in calls
    run = next(c for c in calls if c[0] == "run")
    assert "--userns=keep-id" in run
    assert run[run.index("--device") + 1] == "nvidia.com/gpu=0"
    assert "nvidia.com/gpu=GPU-x" in run
    assert "HF_TOKEN" in run and not any("s3cret" in a for a in run)


def test_podman_unavailable_without_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ok, why = PodmanRuntime.available()
    assert not ok and "podman" in why


def test_site_args_network_and_image_env(tmp_path: Path, fake_podman: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rt = PodmanRuntime(image="r/llem:1")
    rt._rootless = False  # as root: --user uid:gid instead of keep-id
    monkeypatch.setenv("LLEM_PODMAN_GLOBAL_ARGS", "--runtime runc --cgroup-manager=cgroupfs")
    monkeypatch.setenv("LLEM_PODMAN_RUN_ARGS", "--ulimit nofile=1024:1024")
    cmd = rt.command(RunRequest(run_dir=tmp_path, backend="pytorch"), "llem-x")
    assert cmd[:5] == ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs", "run"]
    assert cmd[cmd.index("--network") + 1] == "none"
    assert cmd[cmd.index("--ulimit") + 1] == "nofile=1024:1024"
    assert cmd[cmd.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"
    assert "LLEM_IMAGE_REF=r/llem:1" in cmd
    assert f"LLEM_IMAGE_DIGEST=sha256:{'1' * 64}" in cmd
    assert cmd[-6:] == ["--entrypoint", "python", "r/llem:1", "-m", "llem_harness",
                        "/llem/run"]
