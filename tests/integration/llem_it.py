"""Helpers shared by the integration tests (imported by name; the conftest has fixtures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("LLEM_IT_STATE", "/tmp/llem-it"))
PYTHONPATH = os.pathsep.join(str(REPO / p) for p in ("launcher", "entrypoints", "schemas"))


def docker_skip_reason() -> str | None:
    """Why the tests that need dockerd and .ci/integration-setup.sh's state cannot run here
    (None: they can)."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:
        return f"no reachable Docker daemon ({type(exc).__name__}); run .ci/integration-setup.sh"
    if not (STATE / "env").is_file():
        return f"{STATE}/env missing: run .ci/integration-setup.sh first"
    return None


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    """The one non-blank line a refused command prints on stderr (our error contract)."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stdout + r.stderr
    return lines[0]


def wait_until(what: str, predicate, timeout_s: float = 300, every_s: float = 0.2):
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what``.
    Generous defaults: these tests also run while every core is kept busy (.ci/run)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def kill_launchers(procs: list[subprocess.Popen]) -> None:
    """Kill the launchers a test started that still run, and reap them (a failing test
    leaves no process to the rest of the suite)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=60)


def base_env(**extra: str) -> dict[str, str]:
    """The environment for a `llem` subprocess: this checkout on PYTHONPATH, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLEM_", "HF_"))}
    env["PYTHONPATH"] = PYTHONPATH
    env["LLEM_IT_STATE"] = str(STATE)
    env.update(extra)
    return env


def llem(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (`llem ...`) in a subprocess."""
    code = "import sys; from llem.cli import main; sys.argv[0] = 'llem'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env or base_env(), cwd=cwd, timeout=timeout)


def llem_images(*args: str, env: dict[str, str] | None = None,
                timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`llem images ...` through the sub-app itself (same code the root CLI mounts)."""
    code = ("import sys; from llem.cli.images import app; "
            "app(prog_name='llem images')")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env or base_env(), timeout=timeout)


def find_result(results_dir: Path) -> Path:
    found = sorted(results_dir.rglob("result.json"))
    assert found, f"no result.json under {results_dir}"
    return found[-1]


def load_result(results_dir: Path) -> dict:
    return json.loads(find_result(results_dir).read_text())


#: the label every llem container carries: its run directory (runtimes/containers.py)
LABEL = "io.llenergymeasure.run_dir"
#: ``llem`` in a child process with Python's default SIGINT handler restored: a test started
#: as a shell's background job inherits SIGINT ignored, and the SIGINT tests need it
LAUNCH = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "from llem.cli import main; sys.argv[0] = 'llem'; main()")


def own_containers(client, root: Path) -> list:
    """llem's containers (any state) whose run directory lies under ``root``."""
    prefix = str(root.resolve()) + os.sep
    return [c for c in client.containers.list(all=True, filters={"label": LABEL},
                                                 ignore_removed=True)
            if c.labels.get(LABEL, "").startswith(prefix)]


def assert_one_run_left_clean(results: Path, token: str, state: str, attempts: int) -> None:
    """The study's one run ended in ``state`` with ``attempts`` counted, and every file
    under ``results`` is the user's again and free of the token."""
    (state_file,) = results.rglob("state.json")
    data = json.loads(state_file.read_text())
    assert (data["state"], data["attempts"]) == (state, attempts), data
    for f in results.rglob("*"):
        assert f.lstat().st_uid == os.getuid(), f"{f} not given back"
        if f.is_file():
            assert token.encode() not in f.read_bytes(), f
