"""What `docker inspect` shows of an llem container, on a real daemon with the CPU test image.

A running llem container drops every capability, cannot gain privileges, runs as a non-root
uid (nobody when llem runs as root), gets the experiment's ``runtime.shm_size``, and carries
its run's labels. The HF token is not in anything `docker inspect` prints, nor in any file of
the results; inside, the harness's own Python finds it (huggingface_hub reads the read-only
file that ``HF_TOKEN_PATH`` names).

Brought up by .ci/integration-setup.sh; skipped with the reason when it has not run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from llem_it import LABEL, LAUNCH, base_env, docker_skip_reason, find_result, llem, own_containers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN_PATH = "/run/secrets/llem_hf_token"
#: run by `docker exec` in the running container: what the harness's process would see
PROBE = r"""
import hashlib, json, os
import huggingface_hub
status = dict(line.split(":", 1) for line in open("/proc/1/status").read().splitlines())
token = huggingface_hub.get_token() or ""
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "pid1_cap_eff": status["CapEff"].strip(), "pid1_no_new_privs": status["NoNewPrivs"].strip(),
    "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    "token_in_env": any(k in os.environ for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")),
    "token_file_writable": os.access(os.environ["HF_TOKEN_PATH"], os.W_OK),
    "shm_bytes": os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize,
}))
"""


_REASON = docker_skip_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)


def _token() -> str:
    return f"hf_it_hardening_SECRET_{uuid.uuid4().hex}"


def _no_token_in_files(root: Path, token: str) -> None:
    files = [f for f in root.rglob("*") if f.is_file()]
    assert files
    for f in files:
        assert token.encode() not in f.read_bytes(), f"token leaked into {f}"


@pytest.mark.timing
def test_running_container_is_hardened_and_finds_the_token_only_as_a_file(
    tmp_path: Path, it_env: dict[str, str], client, launched: list[subprocess.Popen]
) -> None:
    token = _token()
    cfg = tmp_path / "harden.yaml"
    cfg.write_text(
        "name: harden\nmodel: builtin:tiny-llama\n"
        "workload: {num_prompts: 4000}\ndecoding: {max_new_tokens: 64}\n"
        "measurement: {baseline_seconds: 0}\nruntime: {shm_size: 96m}\n"
    )
    results = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "run", str(cfg), "--runtime", "docker",
         "--registry", it_env["LLEM_IT_OPEN_REGISTRY"], "--results-dir", str(results)],
        env=base_env(HF_TOKEN=token), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    launched.append(proc)
    deadline = time.monotonic() + 300
    running: list = []
    while not running:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the container never started"
        running = [c for c in own_containers(client, tmp_path) if c.status == "running"]
        time.sleep(0.2)
    (container,) = running

    # while the container runs: not in `docker inspect` (env, args, labels, mounts), not in
    # its log, not in any process's command line on the host (`ps`), not in the environment
    # of any process in the container
    text = subprocess.run(["docker", "inspect", container.id], capture_output=True,
                          text=True, timeout=120, check=True).stdout
    assert token not in text
    assert token not in subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True,
                                       text=True, timeout=120, check=True).stdout
    assert token.encode() not in container.logs()
    top = container.top(ps_args="-eo pid,args")
    assert token not in json.dumps(top)
    col = top["Titles"].index("PID")
    in_container = [int(row[col]) for row in top["Processes"]]
    assert in_container
    for pid in in_container:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone, or not ours to read (then no one else may read it either)
        assert token.encode() not in environ, f"token in the environment of pid {pid}"
    (info,) = json.loads(text)
    host, conf = info["HostConfig"], info["Config"]
    assert "ALL" in host["CapDrop"]
    assert "no-new-privileges" in host["SecurityOpt"]
    uid, gid = (int(x) for x in conf["User"].split(":"))
    assert uid != 0 and gid != 0
    if os.getuid() == 0:
        assert (uid, gid) == (65534, 65534)
    assert host["ShmSize"] == 96 * 1024 * 1024
    assert not any(e.split("=", 1)[0] in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
                   for e in conf["Env"])
    assert f"HF_TOKEN_PATH={TOKEN_PATH}" in conf["Env"]
    (mount,) = [m for m in info["Mounts"] if m["Destination"] == TOKEN_PATH]
    assert mount["RW"] is False
    labels = conf["Labels"]
    run_dir = Path(labels[LABEL])
    assert labels["io.llenergymeasure.study_id"] == run_dir.parents[1].name
    assert labels["io.llenergymeasure.run_id"].endswith(
        f"{run_dir.parent.name}/{run_dir.name}")

    code, out = container.exec_run(["python", "-c", PROBE])
    assert code == 0, out.decode(errors="replace")
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert seen["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert seen["token_in_env"] is False and seen["token_file_writable"] is False
    assert (seen["uid"], seen["gid"]) == (uid, gid)
    assert int(seen["pid1_cap_eff"], 16) == 0 and seen["pid1_no_new_privs"] == "1"
    assert seen["shm_bytes"] == 96 * 1024 * 1024

    proc.send_signal(signal.SIGINT)
    out_text, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, out_text
    assert token not in out_text
    assert not Path(mount["Source"]).parent.exists(), "token dir left after the run"
    assert not own_containers(client, tmp_path)
    _no_token_in_files(results, token)


def test_finished_run_keeps_the_token_out_of_every_result_file(
    tmp_path: Path, it_env: dict[str, str], client
) -> None:
    token = _token()
    results = tmp_path / "r"
    r = llem("run", "--preset", "quick-test", "--runtime", "docker",
             "--registry", it_env["LLEM_IT_OPEN_REGISTRY"], "--results-dir", str(results),
             env=base_env(HF_TOKEN=token, HUGGING_FACE_HUB_TOKEN=token))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert token not in r.stdout + r.stderr
    result = find_result(results)
    _no_token_in_files(results, token)
    # the container ran as someone else; the files came back to whoever ran llem
    assert all(f.stat().st_uid == os.getuid() for f in result.parent.iterdir())
    assert not own_containers(client, tmp_path)
    assert not [p for p in Path("/dev/shm").glob("llem-secret-*/hf_token")
                if _holds(p, token)], "token file left after the run"


def _holds(path: Path, token: str) -> bool:
    try:
        return token in path.read_text()
    except OSError:  # another run's file, removed as we looked
        return False
