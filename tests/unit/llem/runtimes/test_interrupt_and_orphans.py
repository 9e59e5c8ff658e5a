"""Interruption from another thread (a study's Ctrl+C / SIGTERM handler runs on the main
thread, the run on a slot thread), stale token directories of killed launchers, and the
study-wide container sweep of a resume. Real processes, stand-in engines."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llem.runtimes import containers as ct
from llem.runtimes.child import SessionChild
from llem.study import orphans
from llem.study.rundir import write_spec
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec

pytestmark = pytest.mark.timing

SLEEP = [sys.executable, "-c", "import sys, time; open(sys.argv[1], 'w').close(); "
         "time.sleep(300)"]


def _poll(what: str, predicate: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_cancel_from_another_thread_is_an_interruption(tmp_path: Path) -> None:
    child = SessionChild()
    started = tmp_path / "started"
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(r=child.run(
        [*SLEEP, str(started)], dict(os.environ), None, subprocess.DEVNULL,
        subprocess.DEVNULL)))
    worker.start()
    try:
        _poll("the child to start", started.exists)
        child.cancel()
        assert child.proc is None, "cancel() returned while the child still ran"
    finally:
        child.stop()
        worker.join(timeout=60)
    assert (out["r"].code, out["r"].interrupted, out["r"].timed_out) == (130, True, False)


def test_cancel_before_a_run_keeps_it_from_starting_once(tmp_path: Path) -> None:
    child = SessionChild()
    child.cancel()  # nothing running yet: the run already dispatched must not start
    marker = tmp_path / "started"
    res = child.run([*SLEEP, str(marker)], dict(os.environ), None, subprocess.DEVNULL,
                    subprocess.DEVNULL)
    assert res.interrupted and res.code == 130 and not marker.exists()
    ok = child.run([sys.executable, "-c", "pass"], dict(os.environ), None,
                   subprocess.DEVNULL, subprocess.DEVNULL)
    assert (ok.code, ok.interrupted) == (0, False)


def test_a_timeout_is_not_an_interruption(tmp_path: Path) -> None:
    res = SessionChild().run([*SLEEP, str(tmp_path / "s")], dict(os.environ), 1.0,
                             subprocess.DEVNULL, subprocess.DEVNULL)
    assert res.timed_out and not res.interrupted


def test_stale_token_dirs_of_dead_launchers_are_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ct, "_secret_parent", lambda: str(tmp_path))
    monkeypatch.setattr(ct.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{ct.TOKEN_DIR_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{ct.TOKEN_DIR_PREFIX}1-abc"  # pid 1 always runs
    odd = tmp_path / f"{ct.TOKEN_DIR_PREFIX}notapid"
    for d in (stale, live, odd):
        d.mkdir()
        (d / "hf_token").write_text("x")
    with ct.token_file("tok", ct.container_user()) as mine:
        assert mine is not None and mine.parent.name.startswith(
            f"{ct.TOKEN_DIR_PREFIX}{os.getpid()}-")
        assert not stale.exists()  # swept when the next token file is made
        assert live.exists() and odd.exists() and mine.exists()
        assert ct.sweep_stale_token_dirs() == 0  # our own live directory stays
        assert mine.exists()


def _study(tmp_path: Path, runtime: str, runs: int = 2) -> Path:
    cfg = ExperimentConfig()
    study = tmp_path / "study-1"
    for i in range(runs):
        write_spec(study / f"e00{i}" / "cycle-0", RunSpec(
            experiment_id=f"e00{i}", run_id=f"study-1/e00{i}/cycle-0", study_id="study-1",
            config=cfg, config_hash=cfg.config_hash(), runtime=runtime))
    return study


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_resume_sweeps_every_container_of_the_study_with_its_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """A killed launcher's container that finished on its own leaves a result: its run is
    done and never runs again, so only a study-wide sweep finds that container."""
    from llem.images import registry
    from llem.runtimes import docker, podman

    asked: list[tuple[str, Path]] = []

    class Client:
        def close(self) -> None:
            asked.append(("closed", Path()))

    monkeypatch.setattr(registry, "docker_client", lambda timeout=60: Client())
    monkeypatch.setattr(docker, "stop_study_containers",
                        lambda c, d: asked.append(("docker", d)) or 1)
    monkeypatch.setattr(podman, "stop_study_containers",
                        lambda d: asked.append(("podman", d)) or 2)
    study = _study(tmp_path, engine)
    n = orphans.stop_study_orphans(study)
    assert n == (1 if engine == "docker" else 2)
    assert (engine, study) in asked
    assert ("docker" if engine == "podman" else "podman", study) not in asked
    if engine == "docker":
        assert asked[-1][0] == "closed"


def test_a_local_study_asks_no_engine_and_a_dead_daemon_finds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llem.images import registry
    from llem.images.base import ImageError

    def down(timeout: int = 60) -> None:
        raise ImageError("cannot reach the Docker daemon")

    monkeypatch.setattr(registry, "docker_client", down)
    assert orphans.stop_study_orphans(_study(tmp_path / "a", "local")) == 0
    assert orphans.stop_study_orphans(_study(tmp_path / "b", "docker")) == 0
    assert orphans.stop_study_orphans(tmp_path / "missing") == 0
