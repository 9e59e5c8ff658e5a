"""Resume settles what a SIGKILLed launcher left before it runs anything (runner's
``_settle_orphans``). Found by CI under load (tests/integration/test_study_sigkill.py trial
14 ran a run twice): a local harness that finished in the moment between the resume
reading the study and looking for live harnesses left a valid result that the resume did
not see, so it ran the run again. Studies here run for real through the local runtime with
tests/fixtures/fake_harness.py, which counts every execution."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from llem.config.loader import LoadedConfig
from llem.runtimes.local import LocalRuntime
from llem.study import manifest as mf
from llem.study import runner
from llem.study.runner import run_study
from llem_schema.runspec import RESULT_FILE
from llem_schema.study import StudyConfig

FAKE = str(Path(__file__).resolve().parents[3] / "fixtures" / "fake_harness.py")


def loaded() -> LoadedConfig:
    cfg = StudyConfig.model_validate({
        "name": "orph",
        "base": {"model": "builtin:tiny-llama", "runtime": {"runtime": "local"}},
        "sweep": {"workload.batch_size": [1, 2]},
        "study": {"cycles": 1, "max_retries": 0},
    })
    return LoadedConfig(study=cfg, is_study=True, source="study.yaml")


def run(results: Path, resume: bool) -> int:
    return run_study(loaded(), results, quiet=True, resume=resume, console=Console(quiet=True),
                     runtime_factory=lambda: LocalRuntime(python=FAKE), batch_python=FAKE)


@pytest.fixture
def counter(fake_counter) -> Path:
    return fake_counter(0)


def test_a_harness_that_finishes_while_the_resume_opens_the_study_is_not_run_again(
        tmp_path: Path, counter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "r"
    assert run(results, resume=False) == 0
    (study,) = [p for p in results.iterdir() if p.is_dir()]
    first = mf.load_manifest(study).runs[0]
    run_dir = study / first.run_dir
    # the launcher was killed while this run's harness worked: its state says running and
    # the harness has not written its result yet when the resume reads the study ...
    result = (run_dir / RESULT_FILE).read_bytes()
    (run_dir / RESULT_FILE).unlink()
    state = json.loads((run_dir / mf.STATE_FILE).read_text())
    state.update(state="running", result_sha256=None)
    (run_dir / mf.STATE_FILE).write_text(json.dumps(state))
    # ... and it finishes just after, before the resume looks for live harnesses
    real = runner.stop_study_orphans

    def orphan_finishes(study_dir: Path) -> int:
        (run_dir / RESULT_FILE).write_bytes(result)
        return real(study_dir)

    monkeypatch.setattr(runner, "stop_study_orphans", orphan_finishes)
    assert run(results, resume=True) == 0
    executions = Counter(line.split("\t")[0] for line in counter.read_text().splitlines())
    assert executions[str(run_dir.resolve())] == 1, executions
    assert mf.load_manifest(study).counts()["done"] == 2
    assert mf.read_state(study, first).state == "done"
