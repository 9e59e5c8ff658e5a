"""A tiny study through the podman runtime, for real (Debian podman, the CI CPU image).

Brought up by .ci/podman-setup.sh after .ci/integration-setup.sh; skipped with the reason
when podman or the test image is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from llem_it import assert_one_run_left_clean, kill_launchers, one_line, wait_until

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


LABEL = "io.llenergymeasure.run_dir"
#: the CLI, with Ctrl+C's handler installed even when this test process was started with
#: SIGINT ignored (a shell's background job): the SIGINT test needs it
LAUNCH = [sys.executable, "-c",
          "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "from llem.cli import main; sys.argv[0] = 'llem'; main()", "run"]


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *SANDBOX["LLEM_PODMAN_GLOBAL_ARGS"].split(), *args],
                          capture_output=True, text=True, timeout=300)


def own_containers(root: Path) -> list[dict]:
    """`podman inspect` of llem's containers whose run directory lies under ``root``."""
    ids = _podman("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={LABEL}")
    out = []
    for cid in ids.stdout.split():
        info = _podman("inspect", "--format", "json", cid)
        if info.returncode != 0:
            continue  # gone while we looked
        (d,) = json.loads(info.stdout)
        if (d["Config"].get("Labels") or {}).get(LABEL, "").startswith(f"{root.resolve()}/"):
            out.append(d)
    return out


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    """Launchers the test starts are killed, and its containers removed, however it ends."""
    procs: list[subprocess.Popen] = []
    yield procs
    kill_launchers(procs)
    for d in own_containers(tmp_path):
        _podman("rm", "--force", "--ignore", d["Id"])


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
        assert json.loads(f.read_text())["schema_version"] == SCHEMA_VERSION
    assert "hf_podman_SECRET" not in p.stdout + p.stderr
    files = [f for f in (tmp_path / "r").rglob("*") if f.is_file()]
    assert any(f.name == "podman.log" for f in files)
    for f in files:  # results, logs (podman's too), state, manifest
        assert b"hf_podman_SECRET" not in f.read_bytes(), f
        assert f.stat().st_uid == os.getuid(), f  # the container's files came back
    assert not own_containers(tmp_path)


PROBE = r"""
import hashlib, json, os
import huggingface_hub
status = dict(line.split(":", 1) for line in open("/proc/1/status").read().splitlines())
print(json.dumps({
    "uid": os.getuid(), "pid1_cap_eff": status["CapEff"].strip(),
    "pid1_no_new_privs": status["NoNewPrivs"].strip(),
    "token_sha256": hashlib.sha256((huggingface_hub.get_token() or "").encode()).hexdigest(),
    "token_in_env": any(k in os.environ for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")),
}))
"""


@pytest.mark.timing
def test_running_podman_container_is_hardened_and_finds_the_token_as_a_file(
    tmp_path: Path, launched: list[subprocess.Popen]
) -> None:
    env = _env()
    assert env is not None
    token = f"hf_podman_SECRET_{uuid.uuid4().hex}"
    cfg = tmp_path / "long.yaml"
    cfg.write_text("name: podman-long\nmodel: builtin:tiny-llama\n"
                   "workload: {num_prompts: 4000}\ndecoding: {max_new_tokens: 64}\n"
                   "measurement: {baseline_seconds: 0}\nruntime: {shm_size: 96m}\n")
    proc = subprocess.Popen(
        [*LAUNCH, str(cfg), "--runtime", "podman", "--registry", env["LLEM_IT_OPEN_REGISTRY"],
         "--results-dir", str(tmp_path / "r")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **SANDBOX, "COLUMNS": "200", "HF_TOKEN": token},
    )
    launched.append(proc)
    deadline = time.monotonic() + 600
    running: list[dict] = []
    while not running:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the container never started"
        running = [d for d in own_containers(tmp_path) if d["State"]["Status"] == "running"]
        time.sleep(0.5)
    (info,) = running
    inspect = _podman("inspect", "--format", "json", info["Id"])
    assert inspect.returncode == 0 and token not in inspect.stdout
    host, conf = info["HostConfig"], info["Config"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert conf["User"] == ("65534:65534" if os.getuid() == 0
                            else f"{os.getuid()}:{os.getgid()}")
    assert host["ShmSize"] == 96 * 1024 * 1024
    assert "HF_TOKEN_PATH=/run/secrets/llem_hf_token" in conf["Env"]
    probe = _podman("exec", info["Id"], "python", "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert seen["token_in_env"] is False and seen["uid"] != 0
    assert int(seen["pid1_cap_eff"], 16) == 0 and seen["pid1_no_new_privs"] == "1"
    (token_mount,) = [m for m in info["Mounts"]
                      if m["Destination"] == "/run/secrets/llem_hf_token"]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    assert token not in out
    assert not own_containers(tmp_path)
    assert not Path(token_mount["Source"]).parent.exists(), "token dir left after the run"
    assert_one_run_left_clean(tmp_path / "r", token, "interrupted", 0)


@pytest.mark.timing
def test_resume_after_sigkill_stops_the_orphaned_podman_container_first(
    tmp_path: Path, launched: list[subprocess.Popen]
) -> None:
    """A SIGKILLed launcher leaves its podman container running; `--resume` finds it by its
    run label and removes it before the run's next container starts."""
    env = _env()
    assert env is not None
    cfg = tmp_path / "long.yaml"
    cfg.write_text("name: podman-orphan\nmodel: builtin:tiny-llama\n"
                   "workload: {num_prompts: 4000}\ndecoding: {max_new_tokens: 64}\n"
                   "measurement: {baseline_seconds: 0}\n")
    argv = [*LAUNCH, str(cfg), "--runtime", "podman", "--registry",
            env["LLEM_IT_OPEN_REGISTRY"], "--results-dir", str(tmp_path / "r")]
    penv = {**os.environ, **SANDBOX, "COLUMNS": "200"}

    def running() -> list[dict]:
        return [d for d in own_containers(tmp_path) if d["State"]["Status"] == "running"]

    first = subprocess.Popen(argv, env=penv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    launched.append(first)
    (old,) = wait_until("the first container", running, timeout_s=600)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert [d["Id"] for d in running()] == [old["Id"]], "the orphan must outlive its launcher"

    resumed = subprocess.Popen([*argv, "--resume"], env=penv, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    launched.append(resumed)
    seen: list[list[str]] = []

    def new_one() -> list[dict]:
        now = own_containers(tmp_path)
        seen.append([d["Id"] for d in now])
        return [d for d in now if d["Id"] != old["Id"] and d["State"]["Status"] == "running"]

    assert len(wait_until("the resumed run's container", new_one, timeout_s=600)) == 1
    assert all(len(ids) <= 1 for ids in seen), seen  # never two on one run directory
    assert old["Id"] not in [d["Id"] for d in own_containers(tmp_path)]
    resumed.send_signal(signal.SIGINT)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 130, out
    assert not own_containers(tmp_path)


def test_failed_podman_container_points_to_podman_log(tmp_path: Path) -> None:
    """podman refuses the container before the harness runs (a bad site flag): the error is
    only in podman.log, and that is the file the failure names."""
    env = _env()
    assert env is not None
    cfg = tmp_path / "one.yaml"
    cfg.write_text("name: podman-bad\nmodel: builtin:tiny-llama\nstudy: {max_retries: 0}\n")
    bad = {**SANDBOX, "LLEM_PODMAN_RUN_ARGS":
           SANDBOX["LLEM_PODMAN_RUN_ARGS"] + " --llem-it-no-such-flag"}
    p = subprocess.run(
        [*LAUNCH, str(cfg), "--runtime", "podman", "--registry", env["LLEM_IT_OPEN_REGISTRY"],
         "--results-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, **bad, "COLUMNS": "400"},
    )
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    (log,) = (tmp_path / "r").rglob("podman.log")
    assert f"[{log}]" in p.stdout.replace("\n", ""), p.stdout  # however rich wrapped it
    assert "llem-it-no-such-flag" in log.read_text()
    assert not (log.parent / "harness.log").exists()


def test_lock_runs_the_pinned_digest_and_refuses_other_bytes(tmp_path: Path) -> None:
    """podman honours --lock as docker does (issue 14): the pinned digest runs and is
    recorded; a lock whose image id is not what podman holds under it: one line, exit 2,
    no container."""
    import yaml

    env = _env()
    assert env is not None
    (info,) = json.loads(_podman("image", "inspect", "--format", "json",
                                 env["LLEM_IT_IMAGE"]).stdout)
    repo = env["LLEM_IT_IMAGE"].rsplit(":", 1)[0]
    digest = next(d.split("@", 1)[1] for d in info["RepoDigests"] if d.startswith(repo + "@"))
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "name: podman-locked\nmodel: builtin:tiny-llama\n"
        "workload: {num_prompts: 2, batch_size: 1}\ndecoding: {max_new_tokens: 4}\n"
        "measurement: {baseline_seconds: 0, warmup_max_runs: 1, warmup_min_runs: 0, "
        "min_window_seconds: 0}\n")

    def run(image_id: str, results: str) -> subprocess.CompletedProcess[str]:
        lock = tmp_path / f"{results}.lock"
        lock.write_text(yaml.safe_dump({"lock_version": 1, "images": {"pytorch": {
            "ref": env["LLEM_IT_IMAGE"], "digest": digest, "image_id": image_id}}}))
        return subprocess.run(
            [sys.executable, "-m", "llem.cli", "run", str(cfg), "--runtime", "podman",
             "--lock", str(lock), "--registry", "elsewhere.invalid:5000",
             "--results-dir", str(tmp_path / results), "-q"],
            capture_output=True, text=True, timeout=900,
            env={**os.environ, **SANDBOX, "COLUMNS": "200"})

    ok = run(f"sha256:{info['Id']}", "ok")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    from llem.results.io import load_result

    (result,) = (tmp_path / "ok").rglob("result.json")
    r = load_result(result)
    assert r.environment.runtime == "podman"
    assert (r.environment.image_ref, r.environment.image_digest) == (f"{repo}@{digest}", digest)

    other = "sha256:" + "0" * 64
    bad = run(other, "bad")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    line = one_line(bad)
    assert "refused" in line and other[:19] in line, bad.stderr
    assert not list((tmp_path / "bad").rglob("result.json"))
    assert not own_containers(tmp_path)
