"""Study execution on the host: ordering, GPU slots, retries, stop conditions, resume.

The harness is tests/fixtures/fake_harness.py behind the real LocalRuntime (same
subprocess interface, writes a schema-valid result in milliseconds); the real harness is
exercised in tests/integration/test_study_sigkill.py and the sweep acceptance run.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from llem.config.loader import LoadedConfig
from llem.runtimes.local import LocalRuntime
from llem.study import manifest as mf
from llem.study.reuse import group_consecutive, reuse_key
from llem.study.runner import open_study, run_study
from llem.study.slots import Slot, SlotPool, gpu_slots
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from llem_schema.study import StudyConfig, StudyExecution

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
FAKE = str(FIXTURES / "fake_harness.py")


def loaded(study: dict | None = None, sweep: dict | None = None, **base) -> LoadedConfig:
    cfg = StudyConfig.model_validate(
        {
            "name": "t",
            "base": {"model": "builtin:tiny-llama", "runtime": {"runtime": "local"}, **base},
            "sweep": sweep if sweep is not None else {"workload.batch_size": [1, 2]},
            "study": study or {"cycles": 2},
        }
    )
    return LoadedConfig(study=cfg, is_study=True, source="study.yaml")


@pytest.fixture
def counter(fake_counter) -> Path:
    return fake_counter(0.05)


def executions(counter: Path) -> list[tuple[str, float, str]]:
    if not counter.exists():
        return []
    out = []
    for line in counter.read_text().splitlines():
        d, t, _pid, gpus = line.split("\t")
        out.append((d, float(t), gpus))
    return out


def run(ld: LoadedConfig, results: Path, **kw) -> int:
    return run_study(ld, results, quiet=True, console=Console(quiet=True),
                     runtime_factory=lambda: LocalRuntime(python=FAKE),
                     batch_python=FAKE, **kw)


def study_dir(results: Path) -> Path:
    (d,) = [p for p in results.iterdir() if p.is_dir()]
    return d


def test_runs_every_run_once_in_interleaved_order(tmp_path: Path, counter: Path) -> None:
    ld = loaded({"cycles": 3, "order": "interleaved"})
    assert run(ld, tmp_path / "r") == 0
    d = study_dir(tmp_path / "r")
    m = mf.load_manifest(d)
    assert m.counts()["done"] == 6
    order = [Path(x[0]).relative_to(d.resolve()).as_posix() for x in executions(counter)]
    by_pos = [r.run_dir for r in sorted(m.runs, key=lambda r: r.position)]
    assert order == by_pos
    assert [r.cycle for r in sorted(m.runs, key=lambda r: r.position)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.timing
def test_parallel_slots_never_share_a_gpu(tmp_path: Path, counter: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLEM_FAKE_SLEEP", "0.3")
    monkeypatch.setenv("LLEM_FAKE_AWAIT", "2")  # a run finishes only once two have started
    ld = loaded({"cycles": 2, "gpus": [0, 1, 2, 3], "gpus_per_experiment": 2},
                sweep={"workload.batch_size": [1, 2, 4]})
    assert run(ld, tmp_path / "r") == 0
    ex = executions(counter)
    assert len(ex) == 6
    assert {g for _, _, g in ex} == {"0,1", "2,3"}
    # the fake takes >= 0.3 s; two starts on one slot closer than that would mean overlap
    for slot in ("0,1", "2,3"):
        starts = sorted(t for _, t, g in ex if g == slot)
        assert all(b - a >= 0.3 for a, b in itertools.pairwise(starts))
    # the two slots really ran at the same time: the first run waited, without a timeout,
    # for a second one to start, and that could only be on the other slot (starts on one
    # slot are >= 0.3 s apart, and the first slot's run was still waiting)
    first_two = sorted(ex, key=lambda e: e[1])[:2]
    assert {g for _, _, g in first_two} == {"0,1", "2,3"}


def test_gpu_slots_validation() -> None:
    assert gpu_slots(StudyExecution()) == [Slot(0, [])]
    assert gpu_slots(StudyExecution(gpus=[0, 1, 2], gpus_per_experiment=2)) == [Slot(0, [0, 1])]
    with pytest.raises(ConfigError, match="gpus_per_experiment"):
        gpu_slots(StudyExecution(gpus=[0], gpus_per_experiment=2))
    with pytest.raises(ConfigError, match="twice"):
        gpu_slots(StudyExecution(gpus=[0, 0]))


def test_slot_pool_stops_dispatching() -> None:
    seen = []

    def work(u: int, s: Slot) -> None:
        seen.append(u)
        if u == 2:
            pool.stop()

    pool: SlotPool[int] = SlotPool([Slot(0)], work)
    res = pool.run([1, 2, 3, 4])
    assert seen == [1, 2] and res.not_started == [3, 4]


def test_failed_run_is_retried_then_given_up(tmp_path: Path, counter: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLEM_FAKE_FAIL", "cycle-1")
    ld = loaded({"cycles": 2, "max_retries": 2}, sweep={})
    assert run(ld, tmp_path / "r") == 1
    runs = Counter(Path(d).name for d, _, _ in executions(counter))
    assert runs == {"cycle-0": 1, "cycle-1": 3}  # first try + 2 retries
    m = mf.load_manifest(study_dir(tmp_path / "r"))
    failed = [r for r in m.runs if r.state == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 3
    assert "batch" not in (failed[0].message or "") and "harness.log" in (failed[0].message or "")
    # resume: nothing left to retry (attempts > max_retries), done runs not repeated
    assert run(ld, tmp_path / "r", resume=True) == 1
    assert len(executions(counter)) == 4


def test_max_failures_stops_the_study(tmp_path: Path, counter: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLEM_FAKE_FAIL", "cycle-")
    ld = loaded({"cycles": 4, "max_failures": 2, "max_retries": 0}, sweep={})
    assert run(ld, tmp_path / "r") == 1
    assert len(executions(counter)) == 2
    assert mf.load_manifest(study_dir(tmp_path / "r")).counts() == {
        "pending": 2, "running": 0, "done": 0, "failed": 2, "interrupted": 0}


def test_resume_skips_done_and_detects_changed_study(tmp_path: Path, counter: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLEM_FAKE_FAIL", "cycle-1")
    ld = loaded({"cycles": 2, "max_retries": 0})
    assert run(ld, tmp_path / "r") == 1
    assert len(executions(counter)) == 4
    monkeypatch.delenv("LLEM_FAKE_FAIL")
    # a changed study file is refused with a clear message
    changed = loaded({"cycles": 3, "max_retries": 0})
    with pytest.raises(ConfigError, match=r"changed since .* use --fresh"):
        run(changed, tmp_path / "r", resume=True)
    # --fresh starts over in a new directory
    assert run(changed, tmp_path / "r", resume=True, fresh=True) == 0
    assert len([p for p in (tmp_path / "r").iterdir() if p.is_dir()]) == 2
    with pytest.raises(ConfigError, match="no earlier study"):
        open_study(loaded(), tmp_path / "empty", resume=True, fresh=False)


def test_resume_retries_failed_runs(tmp_path: Path, counter: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLEM_FAKE_FAIL", "cycle-1")
    ld = loaded({"cycles": 2, "max_retries": 1}, sweep={})
    monkeypatch.setenv("LLEM_FAKE_FAIL", "cycle-1")
    # first invocation: cycle-1 fails twice (try + 1 retry)
    assert run(ld, tmp_path / "r") == 1
    d = study_dir(tmp_path / "r")
    # make one more attempt possible by hand: a failed run with attempts <= max_retries
    st = json.loads((d / mf.load_manifest(d).runs[1].run_dir / "state.json").read_text())
    st["attempts"] = 1
    (d / st["run_dir"] / "state.json").write_text(json.dumps(st))
    monkeypatch.delenv("LLEM_FAKE_FAIL")
    assert run(ld, tmp_path / "r", resume=True) == 0
    runs = Counter(Path(x[0]).name for x in executions(counter))
    assert runs == {"cycle-0": 1, "cycle-1": 3}


def test_reuse_model_groups_generation_only_changes(tmp_path: Path, counter: Path) -> None:
    ld = loaded({"cycles": 2, "reuse_model": True, "order": "interleaved"},
                sweep={"measurement.warmup_max_runs": [3, 4], "decoding.max_new_tokens": [4, 8]})
    assert run(ld, tmp_path / "r") == 0
    d = study_dir(tmp_path / "r")
    pids = Counter(line.split("\t")[2] for line in counter.read_text().splitlines())
    # per cycle: 2 groups (warmup_max_runs is a measurement setting) of 2 token lengths
    assert sorted(pids.values()) == [2, 2, 2, 2]
    reused = [json.loads(p.read_text())["reused_model"] for p in d.glob("*/cycle-*/result.json")]
    assert sorted(reused) == [False] * 4 + [True] * 4


def test_reuse_key_separates_load_time_settings() -> None:
    a = ExperimentConfig(model="builtin:tiny-llama")
    assert reuse_key(a) == reuse_key(a.model_copy(update={
        "decoding": a.decoding.model_copy(update={"max_new_tokens": 99}),
        "workload": a.workload.model_copy(update={"batch_size": 7}), "name": "x"}))
    assert reuse_key(a) != reuse_key(a.model_copy(update={
        "decoding": a.decoding.model_copy(update={"seed": 5})}))
    assert reuse_key(a) != reuse_key(a.model_copy(update={
        "pytorch": a.pytorch.model_copy(update={"dtype": "float32"})}))
    assert group_consecutive([1, 2, 3, 4], ["a", "a", "b", "a"]) == [[1, 2], [3], [4]]
    assert group_consecutive([1, 2, 3], ["a"] * 3, limit=2) == [[1, 2], [3]]


class _InterruptingRuntime(LocalRuntime):
    """The real local runtime, except that runs whose directory matches ``target`` come back
    as a Ctrl+C would leave them (exit 130, interrupted), ``times`` times."""

    def __init__(self, target: str, times: list[int]) -> None:
        super().__init__(python=FAKE)
        self.target, self.times = target, times

    def run(self, request):  # type: ignore[no-untyped-def]
        if self.target in str(request.run_dir) and self.times[0] > 0:
            self.times[0] -= 1
            from llem.runtimes.base import RunOutcome

            log = request.run_dir / "harness.log"
            log.write_text("interrupted\n")
            return RunOutcome(exit_code=130, duration_s=0.1, log_path=log, runtime="local",
                              interrupted=True)
        return super().run(request)


@pytest.mark.timing
def test_interruption_is_not_a_failed_attempt(tmp_path: Path, counter: Path) -> None:
    """Two Ctrl+Cs on the same run with max_retries 0: each leaves it `interrupted` with no
    attempt counted, and --resume still finishes the study (issue 15: it used to be skipped
    for good after two interruptions)."""
    ld = loaded({"cycles": 2, "max_retries": 0}, sweep={})
    times = [2]

    def go(**kw: object) -> int:
        return run_study(ld, tmp_path / "r", quiet=True, console=Console(quiet=True),
                         runtime_factory=lambda: _InterruptingRuntime("cycle-1", times),
                         batch_python=FAKE, **kw)

    assert go() == 130
    d = study_dir(tmp_path / "r")
    entry = next(r for r in mf.load_manifest(d).runs if r.cycle == 1)
    assert (entry.state, entry.attempts) == ("interrupted", 0)
    assert go(resume=True) == 130
    assert go(resume=True) == 0
    states = {r.cycle: (r.state, r.attempts) for r in mf.rebuild(d, mf.load_manifest(d)).runs}
    assert states == {0: ("done", 1), 1: ("done", 1)}


def test_resume_matches_the_study_name_exactly(tmp_path: Path, counter: Path) -> None:
    """`--resume` for study `ks` must not pick a newer `ks-big-...` (issue 15)."""
    small = loaded({"cycles": 1}, sweep={})
    small.study = small.study.model_copy(update={"name": "ks"})
    big = loaded({"cycles": 1}, sweep={})
    big.study = big.study.model_copy(update={"name": "ks-big"})
    assert run(small, tmp_path / "r") == 0
    assert run(big, tmp_path / "r") == 0
    found = mf.find_latest(tmp_path / "r", "ks")
    assert found is not None and found.name.startswith("ks-2")
    assert mf.find_latest(tmp_path / "r", "ks-big").name.startswith("ks-big-")
