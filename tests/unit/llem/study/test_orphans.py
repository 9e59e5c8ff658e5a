"""Orphan recovery asks the engine that ran a run directory for containers left on it.

The engines are replaced by recorders here; tests/integration/test_docker_run.py SIGKILLs a
real launcher and resumes against a real daemon.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from llem.images.base import ImageError
from llem.study import orphans
from llem.study.rundir import write_spec
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec


def run_dir_of(tmp_path: Path, runtime: str) -> Path:
    cfg = ExperimentConfig()
    d = tmp_path / "study" / "e000-abc" / "cycle-0"
    write_spec(d, RunSpec(experiment_id="e000-abc", run_id="study/e000-abc/cycle-0",
                          study_id="study", config=cfg, config_hash=cfg.config_hash(),
                          runtime=runtime))
    return d


class _Client:
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Path]]:
    """Record which engine was asked about which run dir; each reports one container."""
    from llem.images import registry
    from llem.runtimes import docker, podman

    asked: dict[str, list[Path]] = {"docker": [], "podman": []}
    client = _Client()
    monkeypatch.setattr(registry, "docker_client", lambda timeout=60: client)

    def docker_stop(c: object, run_dir: Path) -> int:
        assert c is client and not client.closed
        asked["docker"].append(run_dir)
        return 1

    def podman_stop(run_dir: Path) -> int:
        asked["podman"].append(run_dir)
        return 1

    monkeypatch.setattr(docker, "stop_run_containers", docker_stop)
    monkeypatch.setattr(podman, "stop_run_containers", podman_stop)
    return asked


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_containers_are_looked_up_with_the_engine_that_ran_the_run(
    tmp_path: Path, engines: dict[str, list[Path]], engine: str
) -> None:
    d = run_dir_of(tmp_path, engine)
    assert orphans.wait_for_orphans(d, timeout_s=5) is True
    assert engines[engine] == [d]
    assert not engines["podman" if engine == "docker" else "docker"]


def test_local_runs_and_unreadable_run_dirs_ask_no_engine(
    tmp_path: Path, engines: dict[str, list[Path]]
) -> None:
    assert orphans.wait_for_orphans(run_dir_of(tmp_path, "local"), timeout_s=5) is False
    assert orphans.stop_orphan_containers(tmp_path / "missing") == 0
    assert engines == {"docker": [], "podman": []}


def test_an_unreachable_daemon_finds_nothing_instead_of_failing_the_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llem.images import registry

    def down(timeout: int = 60) -> None:
        raise ImageError("cannot reach the Docker daemon")

    monkeypatch.setattr(registry, "docker_client", down)
    assert orphans.stop_orphan_containers(run_dir_of(tmp_path, "docker")) == 0


def test_a_local_harness_is_still_waited_for(tmp_path: Path,
                                             engines: dict[str, list[Path]]) -> None:
    import subprocess

    d = run_dir_of(tmp_path, "local")
    code = "import sys, time; time.sleep(float(sys.argv[1]))"
    # an argv like the local runtime's harness: names llem_harness and the run dir
    proc = subprocess.Popen([sys.executable, "-c", code, "4", "llem_harness", str(d)])
    try:
        deadline = time.monotonic() + 30
        while not orphans.harness_pids(d) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphans.harness_pids(d) == [proc.pid]
        assert orphans.wait_for_orphans(d, timeout_s=60) is True
        assert proc.poll() is not None  # it finished on its own: waited for, not killed
        assert proc.returncode == 0
    finally:
        proc.kill()
        proc.wait()
