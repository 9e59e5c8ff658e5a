"""``study.target_ci``: cycles added round by round until each configuration's CI of the chosen
metric is narrow enough, or it has run ``max_cycles`` (issue 16).

The rounds run against synthetic results written by a stand-in for the runner (values chosen
per experiment and cycle), so each test knows exactly when the target must be met; the
runner's wiring runs behind the fake harness, and test_target_ci_cli.py runs a real tiny
study through the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console

from llem.config.loader import LoadedConfig
from llem.results import metrics
from llem.runtimes.local import LocalRuntime
from llem.study import manifest as mf
from llem.study import target
from llem.study.runner import plan_runs, run_study
from llem_schema.study import TARGET_METRICS, StudyConfig, TargetCI, expand_experiments
from tests.factories import make_result, write_result

FAKE = str(Path(__file__).resolve().parents[3] / "fixtures" / "fake_harness.py")

#: experiment index, cycle -> tokens_per_s of that run (None: not measured)
Values = Callable[[int, int], float | None]


class Study:
    """A study directory with its planned runs, and a ``run_more`` that 'runs' new entries by
    writing their results (values from ``values``) and marking them done."""

    def __init__(self, root: Path, values: Values, *, cycles: int, batch_sizes: list[int],
                 sweep_key: str = "workload.batch_size", **target_kw: object) -> None:
        self.values = values
        self.config = StudyConfig.model_validate({
            "name": "t", "base": {"model": "builtin:tiny-llama"},
            "sweep": {sweep_key: batch_sizes},
            "study": {"cycles": cycles, "target_ci": {"metric": "tokens_per_s", **target_kw}}})
        assert self.config.study.target_ci is not None
        self.target: TargetCI = self.config.study.target_ci
        self.experiments = expand_experiments(self.config)
        ld = LoadedConfig(study=self.config, is_study=True, source="study.yaml")
        self.dir = root / "t-20260101-120000"
        self.manifest = mf.create(self.dir, self.dir.name, self.config, plan_runs(ld))
        #: the statuses each round was decided on, and how many runs each round started
        self.rounds: list[list[mf.TargetStatus]] = []
        self.fail_added = False
        self.code = 0
        self._run_pending(self.manifest)
        self.manifest = mf.rebuild(self.dir, self.manifest)

    def _run_pending(self, manifest: mf.Manifest, fail: bool = False) -> None:
        for e in manifest.runs:
            if e.state != "pending":
                continue
            e.attempts += 1
            v = self.values(e.experiment_index, e.cycle)
            if fail:
                e.state, e.message = "failed", "exit 3"
            else:
                kw = ({"null": {"throughput.output_tokens_per_s": "not measured in this test"}}
                      if v is None else {"tokens_per_s": v})
                write_result(self.dir / e.run_dir, make_result(
                    config=self.experiments[e.experiment_index], study_id=self.dir.name,
                    experiment_id=e.experiment_id, cycle=e.cycle, noise=0.0, **kw))
                e.state = "done"
            mf.write_state(self.dir, e)

    def run_more(self, manifest: mf.Manifest) -> tuple[int, mf.Manifest]:
        self.rounds.append(list(manifest.target_ci))
        if self.code:
            return self.code, manifest
        self._run_pending(manifest, fail=self.fail_added)
        return 0, mf.rebuild(self.dir, manifest)

    def reach(self) -> tuple[int, mf.Manifest]:
        return target.run_to_target(self.dir, self.manifest, self.target, Console(quiet=True),
                                    self.run_more)


def by_id(manifest: mf.Manifest) -> dict[int, mf.TargetStatus]:
    index = {r.experiment_id: r.experiment_index for r in manifest.runs}
    return {index[s.experiment_id]: s for s in manifest.target_ci}


def cycles_run(manifest: mf.Manifest, i: int) -> list[int]:
    return sorted(r.cycle for r in manifest.runs if r.experiment_index == i)


#: noisy for five cycles (about +-16% of the mean), then steady at the mean
NOISY_THEN_STEADY = [100.0, 70.0, 130.0, 85.0, 115.0]


def narrowing(i: int, c: int) -> float:
    return NOISY_THEN_STEADY[c] if c < 5 else 100.0


def test_a_steady_configuration_meets_the_target_with_its_planned_cycles(
        tmp_path: Path) -> None:
    s = Study(tmp_path, lambda i, c: 100.0 + c % 2, cycles=5, batch_sizes=[1],
              rel_half_width=0.05)
    code, m = s.reach()
    assert code == 0 and s.rounds == []
    (st,) = m.target_ci
    assert st.status == "met" and st.met and st.cycles == 5 and st.n_valid == 5
    assert st.rel_half_width is not None and st.rel_half_width <= 0.05
    assert st.ci_low is not None and st.ci_high is not None
    assert st.ci_low < st.mean < st.ci_high  # type: ignore[operator]
    assert len(m.runs) == 5


def test_a_configuration_whose_ci_narrows_stops_when_it_meets_the_target(
        tmp_path: Path) -> None:
    """Noisy first cycles, steady ones after: cycles are added one per round, and adding
    stops at the first round whose CI is within +-8%, well before max_cycles."""
    s = Study(tmp_path, narrowing, cycles=5, batch_sizes=[1], rel_half_width=0.08,
              max_cycles=40)
    code, m = s.reach()
    assert code == 0
    (st,) = m.target_ci
    assert st.status == "met" and st.rel_half_width is not None and st.rel_half_width <= 0.08
    assert 5 < st.cycles < 40
    assert cycles_run(m, 0) == list(range(st.cycles))  # one new cycle per round, in order
    assert len(s.rounds) == st.cycles - 5
    # every round before was decided on a CI still above the target, and it narrowed
    widths = [r[0].rel_half_width for r in s.rounds]
    assert all(w is not None and w > 0.08 for w in widths), widths
    assert widths == sorted(widths, reverse=True) and widths[0] > 2 * widths[-1]
    assert all(r[0].status == "adding" for r in s.rounds)


def test_a_configuration_that_never_meets_it_stops_at_max_cycles(tmp_path: Path) -> None:
    s = Study(tmp_path, lambda i, c: 50.0 if c % 2 else 150.0, cycles=5, batch_sizes=[1],
              rel_half_width=0.01, max_cycles=8)
    code, m = s.reach()
    assert code == 0
    (st,) = m.target_ci
    assert st.status == "max_cycles" and not st.met and st.cycles == 8
    assert st.rel_half_width is not None and st.rel_half_width > 0.01
    assert cycles_run(m, 0) == list(range(8)) and len(s.rounds) == 3
    line = target.status_line(st, "t[batch_size=1]")
    assert "not met after 8 cycles, max_cycles reached" in line and "> 1.0%" in line


def test_only_configurations_above_the_target_get_more_cycles(tmp_path: Path) -> None:
    """Experiment 0 is steady, experiment 1 narrows: rounds add cycles to 1 alone."""
    s = Study(tmp_path, lambda i, c: 100.0 if i == 0 else narrowing(i, c), cycles=5,
              batch_sizes=[1, 2], rel_half_width=0.08, max_cycles=40)
    code, m = s.reach()
    assert code == 0
    st = by_id(m)
    assert st[0].status == "met" and st[0].cycles == 5 and cycles_run(m, 0) == list(range(5))
    assert st[1].status == "met" and st[1].cycles > 5
    assert [r.experiment_index for r in m.runs if r.cycle >= 5] == [1] * (st[1].cycles - 5)
    # added runs come after every planned one, in the order they were added
    positions = [r.position for r in sorted(m.runs, key=lambda r: (r.cycle >= 5, r.cycle))]
    assert positions == sorted(positions)


def test_fewer_than_five_planned_cycles_are_topped_up_before_any_ci(tmp_path: Path) -> None:
    s = Study(tmp_path, lambda i, c: 100.0, cycles=2, batch_sizes=[1], rel_half_width=0.05)
    code, m = s.reach()
    assert code == 0
    (st,) = m.target_ci
    assert st.status == "met" and st.cycles == 5
    assert [r[0].rel_half_width for r in s.rounds] == [None, None, None]
    assert "2 cycles: range shown" in (s.rounds[0][0].note or "")
    line = target.round_line(1, s.target, s.rounds[0])
    assert line == ("target_ci round 1: one more cycle for 1 configuration(s) "
                    "(1 without a CI yet (needs 5 valid cycles))")


def test_max_cycles_below_five_stops_without_a_ci(tmp_path: Path) -> None:
    s = Study(tmp_path, lambda i, c: 100.0, cycles=2, batch_sizes=[1], max_cycles=3)
    code, m = s.reach()
    (st,) = m.target_ci
    assert code == 0 and st.status == "max_cycles" and st.cycles == 3
    assert st.rel_half_width is None and "no CI yet" in target.status_line(st, None)


def test_a_metric_null_everywhere_adds_nothing(tmp_path: Path) -> None:
    """A CPU host has no energy: more cycles cannot give a CI, so none are added."""
    s = Study(tmp_path, lambda i, c: None, cycles=2, batch_sizes=[1])
    code, m = s.reach()
    (st,) = m.target_ci
    assert code == 0 and s.rounds == [] and len(m.runs) == 2
    assert st.status == "not_measured" and st.note == "not measured in this test"
    assert "tokens_per_s not measured here" in target.status_line(st, None)


def test_failed_added_runs_count_towards_max_cycles(tmp_path: Path) -> None:
    s = Study(tmp_path, lambda i, c: 50.0 if c % 2 else 150.0, cycles=5, batch_sizes=[1],
              rel_half_width=0.01, max_cycles=7)
    s.fail_added = True
    code, m = s.reach()
    (st,) = m.target_ci
    assert code == 0 and st.status == "max_cycles" and st.cycles == 7 and st.n_valid == 5
    assert m.counts() == {"pending": 0, "running": 0, "done": 5, "failed": 2, "interrupted": 0}


def test_no_finished_run_adds_nothing(tmp_path: Path) -> None:
    s = Study(tmp_path, lambda i, c: 100.0, cycles=1, batch_sizes=[1])
    for e in s.manifest.runs:
        (s.dir / e.run_dir / "result.json").unlink()
        e.state = "failed"
        mf.write_state(s.dir, e)
    s.manifest = mf.rebuild(s.dir, s.manifest)
    code, m = s.reach()
    (st,) = m.target_ci
    assert code == 0 and s.rounds == [] and st.status == "no_results"


def test_manifest_records_the_statuses_and_an_interrupted_round_resumes(
        tmp_path: Path) -> None:
    """Each round's entries reach manifest.json before they run; interrupted, the round's run
    stays pending there, and a second call (what --resume does) runs it and goes on."""
    s = Study(tmp_path, narrowing, cycles=5, batch_sizes=[1], rel_half_width=0.08,
              max_cycles=40)
    s.code = 130
    code, m = s.reach()
    assert code == 130
    on_disk = mf.load_manifest(s.dir)
    assert [r.cycle for r in on_disk.runs] == [0, 1, 2, 3, 4, 5]
    assert on_disk.runs[-1].state == "pending"
    assert [t.status for t in on_disk.target_ci] == ["adding"]
    s.code = 0
    s._run_pending(on_disk)  # the resumed study runs the pending entry first
    s.manifest = mf.rebuild(s.dir, on_disk)
    code, m = s.reach()
    assert code == 0
    on_disk = mf.load_manifest(s.dir)
    assert on_disk.target_ci == m.target_ci
    (st,) = on_disk.target_ci
    assert st.status == "met" and [r.cycle for r in on_disk.runs] == list(range(st.cycles))
    assert all(r.state == "done" for r in on_disk.runs)


def test_experiments_sharing_a_config_hash_are_judged_apart(tmp_path: Path) -> None:
    """A sweep over the name gives two experiments with one config hash; each is judged on
    its own cycles (one steady, one never narrow enough)."""
    s = Study(tmp_path, lambda i, c: 100.0 if i == 0 else (50.0 if c % 2 else 150.0),
              cycles=5, batch_sizes=["a", "b"], sweep_key="name", rel_half_width=0.05,
              max_cycles=6)
    assert s.experiments[0].config_hash() == s.experiments[1].config_hash()
    code, m = s.reach()
    st = by_id(m)
    assert code == 0
    assert (st[0].status, st[0].cycles) == ("met", 5)
    assert (st[1].status, st[1].cycles) == ("max_cycles", 6)


# ------------------------------------------------------------------ the config


def test_target_metrics_are_the_registry_keys() -> None:
    assert list(TARGET_METRICS) == list(metrics.METRICS)


def test_target_ci_config_is_checked() -> None:
    ok = StudyConfig.model_validate({"study": {"cycles": 5, "target_ci": {}}})
    assert ok.study.target_ci == TargetCI(metric="energy_per_token", rel_half_width=0.05,
                                          max_cycles=20)
    with pytest.raises(ValidationError, match="did you mean 'tokens_per_s'"):
        TargetCI.model_validate({"metric": "token_per_s"})
    with pytest.raises(ValidationError, match=r"max_cycles \(4\) is below cycles \(5\)"):
        StudyConfig.model_validate({"study": {"cycles": 5, "target_ci": {"max_cycles": 4}}})
    for bad in ({"rel_half_width": 0}, {"max_cycles": 0}, {"rel_halfwidth": 0.1}):
        with pytest.raises(ValidationError):
            TargetCI.model_validate(bad)


# ------------------------------------------------------------------ the runner


def test_the_runner_adds_cycles_after_the_planned_ones(tmp_path: Path, fake_counter) -> None:
    """Behind the fake harness (identical results: a zero-width CI), 3 planned cycles become
    5, the least a CI needs; the report says so."""
    fake_counter(0)
    cfg = StudyConfig.model_validate({
        "name": "t", "base": {"model": "builtin:tiny-llama", "runtime": {"runtime": "local"}},
        "study": {"cycles": 3, "target_ci": {"metric": "tokens_per_s", "max_cycles": 8}}})
    console = Console(record=True, width=100)
    code = run_study(LoadedConfig(study=cfg, is_study=True, source="study.yaml"),
                     tmp_path / "r", quiet=True, console=console,
                     runtime_factory=lambda: LocalRuntime(python=FAKE), batch_python=FAKE)
    assert code == 0
    (d,) = (tmp_path / "r").iterdir()
    m = mf.load_manifest(d)
    assert [r.cycle for r in m.runs] == [0, 1, 2, 3, 4]
    assert m.counts()["done"] == 5
    (st,) = m.target_ci
    assert st.status == "met" and st.cycles == 5 and st.rel_half_width == 0.0
    out = console.export_text()
    assert "target_ci round 2: one more cycle for 1 configuration(s)" in out
    assert "met at 5 cycles (+-0.0% <= 5.0%)" in out
