"""PodmanRuntime against a stand-in ``podman`` on PATH (no podman/images/GPUs here).

The stand-in records its argv and answers ``info``/``image``/``ps``/``inspect`` queries with
podman's shapes; ``run`` records what the token file mount holds, then executes the
bind-mounted run dir's harness locally (fake harness), so the runtime's whole path (command,
wait, digest lookup, outcome) is exercised. ``FAKE_PODMAN_PS`` lists container ids that
``ps`` reports (``FAKE_PODMAN_PS_JSON``: what ``ps --format json`` prints);
``FAKE_PODMAN_FAIL`` makes ``run`` fail the way podman itself does; ``FAKE_PODMAN_ID`` is
the image id ``image inspect`` answers, ``FAKE_PODMAN_EXISTS`` the exit code of ``image exists``.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

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
    print(json.dumps([{"Id": os.environ.get("FAKE_PODMAN_ID", "abc"),
                       "RepoDigests": ["r/llem@sha256:" + "1" * 64]}]))
elif args[:2] == ["image", "exists"]:
    sys.exit(int(os.environ.get("FAKE_PODMAN_EXISTS", "1")))
elif args[:1] == ["ps"] and "json" in args:
    print(os.environ.get("FAKE_PODMAN_PS_JSON", "[]"))
elif args[:1] == ["ps"]:
    print("\n".join(os.environ.get("FAKE_PODMAN_PS", "").split()))
elif args[:1] == ["inspect"]:
    print(json.dumps([{"Mounts": []}]))
elif args[:1] == ["run"]:
    if os.environ.get("FAKE_PODMAN_FAIL"):
        print("Error: unknown flag: --bogus", file=sys.stderr)
        sys.exit(125)
    vols = [args[i + 1] for i, a in enumerate(args) if a == "-v"]
    for v in vols:
        src, dst = v.split(":")[:2]
        if dst == "/run/secrets/llem_hf_token":
            with open(os.environ["PODMAN_LOG"], "a") as f:
                f.write(json.dumps({"token_file": open(src).read(),
                                    "mode": oct(os.stat(src).st_mode & 0o777)}) + "\n")
    host = vols[0].split(":")[0]
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


def write_run(tmp_path: Path, shm: str = "8g") -> Path:
    from llem.study.rundir import write_spec
    from llem_schema.config import ExperimentConfig
    from llem_schema.runspec import RunSpec

    cfg = ExperimentConfig.model_validate({"model": "builtin:tiny-llama",
                                           "runtime": {"shm_size": shm}})
    run_dir = tmp_path / "s" / "e000" / "cycle-0"
    write_spec(run_dir, RunSpec(experiment_id="e000", run_id="s/e000/cycle-0", study_id="s",
                                config=cfg, config_hash=cfg.config_hash(), runtime="podman"))
    return run_dir


def test_podman_run_uses_cdi_keep_id_and_hands_the_token_as_a_file(
    tmp_path: Path, fake_podman: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llem.study.rundir import read_result

    assert PodmanRuntime.available() == (True, "")
    monkeypatch.setenv("HF_TOKEN", "s3cret")
    run_dir = write_run(tmp_path, shm="256m")
    rt = PodmanRuntime(image="r/llem/pytorch:0.1.0-cuda12")
    rt.ensure_image(None)
    out = rt.run(RunRequest(run_dir=run_dir, backend="pytorch", gpus=[0, "GPU-x"],
                            env={"HF_TOKEN": "s3cret", "HF_HOME": "/root/hf"}))
    assert out.exit_code == 0 and out.image_digest == "sha256:" + "1" * 64
    read_result(run_dir)
    lines = [json.loads(line) for line in fake_podman.read_text().splitlines()]
    calls = [c for c in lines if isinstance(c, list)]
    assert ["pull", "--quiet", "r/llem/pytorch:0.1.0-cuda12"] in calls
    run = next(c for c in calls if c[0] == "run")
    assert "--userns=keep-id" in run
    assert run[run.index("--device") + 1] == "nvidia.com/gpu=0"
    assert "nvidia.com/gpu=GPU-x" in run
    # hardened like a docker container, with the experiment's shm size and its labels
    assert "--cap-drop=all" in run and "no-new-privileges" in run
    assert run[run.index("--shm-size") + 1] == "256m"
    assert f"io.llenergymeasure.run_dir={run_dir.resolve()}" in run
    assert "io.llenergymeasure.run_id=s/e000/cycle-0" in run
    # the token: a 0600 file the container sees, named by HF_TOKEN_PATH; no -e HF_TOKEN
    assert {"token_file": "s3cret", "mode": "0o600"} in lines
    assert "HF_TOKEN_PATH=/run/secrets/llem_hf_token" in run
    assert "HF_TOKEN" not in run and "HF_HOME" not in run
    assert not any("s3cret" in a for a in run)
    (src,) = [a.split(":")[0] for a in run if a.endswith(":/run/secrets/llem_hf_token:ro")]
    assert not Path(src).exists() and not Path(src).parent.exists()


def test_failed_container_points_to_podman_log(tmp_path: Path, fake_podman: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """podman's own errors never reach harness.log (the harness never ran): the failure
    message names podman.log, which holds them."""
    from llem.study.execute import execute
    from llem_schema.runspec import RunSpec

    monkeypatch.setenv("FAKE_PODMAN_FAIL", "1")
    run_dir = write_run(tmp_path)
    spec = RunSpec.model_validate_json((run_dir / "experiment.json").read_text())
    report = execute(PodmanRuntime(image="r/llem:1"), spec, run_dir)
    assert not report.ok and report.outcome.exit_code == 125
    log = run_dir.resolve() / "podman.log"
    assert f"[{log}]" in report.message
    assert "unknown flag: --bogus" in log.read_text()
    assert not (run_dir / "harness.log").exists()


def test_stale_containers_of_the_run_dir_go_before_a_new_one(
    tmp_path: Path, fake_podman: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PODMAN_PS", "old1 old2")
    run_dir = write_run(tmp_path)
    assert PodmanRuntime(image="r/llem:1").run(RunRequest(run_dir, "pytorch")).exit_code == 0
    calls = [c for c in map(json.loads, fake_podman.read_text().splitlines())
             if isinstance(c, list)]
    ps = calls.index(next(c for c in calls if c[0] == "ps"))
    assert f"label=io.llenergymeasure.run_dir={run_dir.resolve()}" in calls[ps]
    stop = calls.index(["stop", "--ignore", "--time", "10", "old1", "old2"])
    rm = calls.index(["rm", "--force", "--ignore", "old1", "old2"])
    run = calls.index(next(c for c in calls if c[0] == "run"))
    assert ps < stop < rm < run


def test_podman_unavailable_without_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ok, why = PodmanRuntime.available()
    assert not ok and "podman" in why


def test_site_args_network_and_image_env(tmp_path: Path, fake_podman: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rt = PodmanRuntime(image="r/llem:1")
    rt._rootless = False  # rootful: --user, never root (nobody when llem runs as root)
    monkeypatch.setenv("LLEM_PODMAN_GLOBAL_ARGS", "--runtime runc --cgroup-manager=cgroupfs")
    monkeypatch.setenv("LLEM_PODMAN_RUN_ARGS", "--ulimit nofile=1024:1024")
    cmd = rt.command(RunRequest(run_dir=tmp_path, backend="pytorch"), "llem-x")
    assert cmd[:5] == ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs", "run"]
    assert cmd[cmd.index("--network") + 1] == "none"
    assert cmd[cmd.index("--ulimit") + 1] == "nofile=1024:1024"
    expected = "65534:65534" if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"
    assert cmd[cmd.index("--user") + 1] == expected
    assert "LLEM_IMAGE_REF=r/llem:1" in cmd
    assert f"LLEM_IMAGE_DIGEST=sha256:{'1' * 64}" in cmd
    assert cmd[-6:] == ["--entrypoint", "python", "r/llem:1", "-m", "llem_harness",
                        "/llem/run"]
    explicit = PodmanRuntime(image="r", user="1234:5")
    explicit._rootless = False
    argv = explicit.command(RunRequest(run_dir=tmp_path, backend="pytorch"), "x")
    assert argv[argv.index("--user") + 1] == "1234:5"


def _calls(log: Path) -> list[list[str]]:
    return [c for c in map(json.loads, log.read_text().splitlines()) if isinstance(c, list)]


@pytest.mark.timing
def test_cleanup_from_another_thread_interrupts_the_run_after_its_teardown(
    tmp_path: Path, fake_podman: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The study's Ctrl+C / SIGTERM handler (main thread) stops the container of a run on a
    slot thread: the run is interrupted, not failed, and cleanup() returns only after that
    run removed its token file."""
    monkeypatch.setenv("LLEM_FAKE_SLEEP", "300")
    run_dir = write_run(tmp_path)
    rt = PodmanRuntime(image="r/llem:1")
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(o=rt.run(RunRequest(
        run_dir, "pytorch", env={"HF_TOKEN": "s3cret"}))))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not (fake_podman.exists() and any(c[0] == "run" for c in _calls(fake_podman))
                   and (tmp_path / "count.log").exists()):
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.02)
        run = next(c for c in _calls(fake_podman) if c[0] == "run")
        (src,) = [a.split(":")[0] for a in run if a.endswith(":/run/secrets/llem_hf_token:ro")]
        name = run[run.index("--name") + 1]
        rt.cleanup()
        assert not Path(src).parent.exists(), "cleanup returned before the run's teardown"
    finally:
        rt._child.stop()
        worker.join(timeout=60)
    o = out["o"]
    assert (o.exit_code, o.interrupted, o.timed_out) == (130, True, False)
    calls = _calls(fake_podman)
    assert ["stop", "--ignore", "--time", "10", name] in calls
    assert ["rm", "--force", "--ignore", name] in calls


def test_study_containers_are_those_under_the_study_dir(
    tmp_path: Path, fake_podman: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llem.runtimes.podman import stop_study_containers, study_containers

    study = tmp_path / "s"
    rows = [{"Id": "mine", "Labels": {"io.llenergymeasure.run_dir": f"{study}/e000/cycle-0"}},
            {"Id": "sibling", "Labels": {"io.llenergymeasure.run_dir": f"{study}-2/e/cycle-0"}},
            {"Id": "bare", "Labels": None}]
    monkeypatch.setenv("FAKE_PODMAN_PS_JSON", json.dumps(rows))
    assert study_containers(study) == ["mine"]
    assert stop_study_containers(study) == 1
    calls = _calls(fake_podman)
    assert ["stop", "--ignore", "--time", "10", "mine"] in calls
    assert ["rm", "--force", "--ignore", "mine"] in calls


# --------------------------------------------------------------- --lock (issue 14)

PINNED_ID = "sha256:" + "7" * 64
PINNED_DIGEST = "sha256:" + "5" * 64


def _write_lock(tmp_path: Path) -> Path:
    from llem.images.lock import LockEntry, LockFile

    path = tmp_path / "llem.lock"
    LockFile(images={"pytorch": LockEntry(ref="reg.lab/llenergymeasure/pytorch:0.1.0-cpu",
                                          digest=PINNED_DIGEST, image_id=PINNED_ID)}).write(path)
    return path


def test_lock_pulls_and_runs_the_pinned_digest(tmp_path: Path, fake_podman: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """As with docker: the pinned digest is what is pulled and run, and its id is checked."""
    from llem.study.execute import make_runtime

    monkeypatch.setenv("FAKE_PODMAN_ID", PINNED_ID.split(":")[1])  # podman's ids: bare hex
    rt = make_runtime("podman", backend="pytorch", image=None, registry="elsewhere.lab",
                      pull_policy="missing", cuda="cpu", lock=_write_lock(tmp_path))
    pinned = f"reg.lab/llenergymeasure/pytorch@{PINNED_DIGEST}"
    assert rt.image == pinned
    out = rt.run(RunRequest(run_dir=write_run(tmp_path), backend="pytorch"))
    assert out.exit_code == 0 and out.image_digest == PINNED_DIGEST
    calls = _calls(fake_podman)
    assert ["pull", "--quiet", pinned] in calls
    run = next(c for c in calls if c[0] == "run")
    assert run[-4] == pinned and f"LLEM_IMAGE_DIGEST={PINNED_DIGEST}" in run


def test_lock_refuses_other_bytes_in_one_line(tmp_path: Path, fake_podman: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An image under the pinned name whose id is not the pinned one never runs: `llem run
    --runtime podman --lock` exits 2 with one line, and no container is started."""
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    monkeypatch.setenv("FAKE_PODMAN_ID", "9" * 64)
    monkeypatch.setenv("FAKE_PODMAN_EXISTS", "0")  # present here, under the pinned name
    env = subprocess_env() | {"HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-m", "llem.cli", "run", "--preset", "quick-test",
                        "--runtime", "podman", "--lock", str(_write_lock(tmp_path)),
                        "--results-dir", str(tmp_path / "res")],
                       capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(lines) == 1 and "refused" in lines[0] and PINNED_ID[:19] in lines[0], r.stderr
    assert "sha256:9999999999" in lines[0]
    assert not any(c[0] in ("run", "pull") for c in _calls(fake_podman))
    assert not list((tmp_path / "res").rglob("result.json"))
