"""A runtime that fails before a run starts (no image, no daemon, a container that cannot be
created) stops the study with its one-line reason and leaves nothing half-done: no empty
study directory, no run marked ``running``.

The docker side of the same story (nothing left ``Created``) is in
tests/unit/llem/runtimes/test_docker_hardening.py and tests/integration/test_docker_run.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from llem.config.loader import LoadedConfig
from llem.runtimes.base import RunOutcome, RunRequest, RuntimeUnavailable
from llem.runtimes.local import LocalRuntime
from llem.study import manifest as mf
from llem.study.runner import run_study
from llem_schema.study import StudyConfig

FAKE = str(Path(__file__).resolve().parents[3] / "fixtures" / "fake_harness.py")
WHY = "docker could not start the container: no such image: sha256:111"


def loaded(cycles: int = 2) -> LoadedConfig:
    cfg = StudyConfig.model_validate({
        "name": "rtfail",
        "base": {"model": "builtin:tiny-llama", "runtime": {"runtime": "local"}},
        "study": {"cycles": cycles, "max_retries": 0},
    })
    return LoadedConfig(study=cfg, is_study=True, source="study.yaml")


class _FailsOn(LocalRuntime):
    """The local runtime with the fake harness, except that run directories containing
    ``target`` fail the way a daemon refusing to create a container does."""

    def __init__(self, target: str) -> None:
        super().__init__(python=FAKE)
        self.target = target

    def run(self, request: RunRequest) -> RunOutcome:
        if self.target in str(request.run_dir):
            raise RuntimeUnavailable(WHY)
        return super().run(request)


@pytest.fixture(autouse=True)
def _counter(fake_counter) -> None:
    fake_counter(0.01)


def go(results: Path, factory, **kw: object) -> int:  # type: ignore[no-untyped-def]
    return run_study(loaded(), results, quiet=True, console=Console(quiet=True),
                     runtime_factory=factory, batch_python=FAKE, **kw)


def test_no_image_leaves_no_study_directory(tmp_path: Path) -> None:
    def no_image() -> LocalRuntime:
        raise RuntimeUnavailable("image r/llem:1 is not present and --pull never was given")

    with pytest.raises(RuntimeUnavailable, match="--pull never"):
        go(tmp_path / "r", no_image)
    assert list((tmp_path / "r").iterdir()) == []


def test_container_that_cannot_start_leaves_no_study_directory(tmp_path: Path) -> None:
    with pytest.raises(RuntimeUnavailable, match="no such image"):
        go(tmp_path / "r", lambda: _FailsOn("cycle-0"))
    assert list((tmp_path / "r").iterdir()) == []
    assert not (tmp_path / "executions.log").exists()  # no harness ever started


def test_a_study_with_work_done_keeps_it_and_the_failed_run_is_not_running(
    tmp_path: Path,
) -> None:
    with pytest.raises(RuntimeUnavailable):
        go(tmp_path / "r", lambda: _FailsOn("cycle-1"))
    (d,) = list((tmp_path / "r").iterdir())
    states = {r.cycle: (r.state, r.attempts) for r in mf.rebuild(d, mf.load_manifest(d)).runs}
    assert states == {0: ("done", 1), 1: ("pending", 0)}
    # resumed where the runtime works again: the run that never started runs now, once
    with pytest.raises(RuntimeUnavailable):  # still failing: the directory is kept
        go(tmp_path / "r", lambda: _FailsOn("cycle-1"), resume=True)
    assert d.is_dir()
    assert go(tmp_path / "r", lambda: LocalRuntime(python=FAKE), resume=True) == 0
    states = {r.cycle: (r.state, r.attempts) for r in mf.rebuild(d, mf.load_manifest(d)).runs}
    assert states == {0: ("done", 1), 1: ("done", 1)}
