"""process_state: the stage-by-stage bisection's ratios, and its test process taking on llem's
real stages in order (on the CPU's launch-bound shape; the GPU run is h100_calls.sh's)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks" / "references"))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import process_state
import process_state_worker as psw


def seg(tok_per_s: float) -> dict[str, Any]:
    return {"tok_per_s": tok_per_s}


def test_rounds_are_mirrored() -> None:
    assert process_state.round_order(["t0", "c0", "l0"], 0) == ["t0", "c0", "l0"]
    assert process_state.round_order(["t0", "c0", "l0"], 1) == ["l0", "c0", "t0"]


def test_stage_summary_pairs_each_test_with_its_rounds_controls() -> None:
    rounds = [{"t0": seg(96 + r % 2), "t1": seg(98), "c0": seg(100), "c1": seg(100 + r),
               "l0": seg(94), "l1": seg(98)} for r in range(6)]
    rep = process_state.stage_summary(rounds)
    assert rep["rounds"] == 6
    # each test segment over the mean of its round's two controls
    t0 = [(96 + r % 2) / ((200 + r) / 2) for r in range(6)]
    assert rep["test_over_control_by_process"]["t0"] == pytest.approx(statistics.median(t0))
    for key in ("test_over_control", "llem_over_control", "llem_over_test",
                "control_over_control"):
        lo, hi = rep[key + "_ci95"]
        assert lo <= rep[key] <= hi
    # llem's window over the bare loop in its own test process, round by round
    assert rep["llem_over_test_by_process"]["l1"] == pytest.approx(1.0)
    assert rep["llem_over_test_by_process"]["l0"] == pytest.approx(
        statistics.median(94 / (96 + r % 2) for r in range(6)))
    assert rep["control_over_control"] < 1  # c1 grows over the rounds
    assert rep["tok_per_s"]["c0"] == 100


def test_stage_summary_without_llem_sides_or_a_second_control() -> None:
    rep = process_state.stage_summary([{"t0": seg(95), "c0": seg(100)} for _ in range(4)])
    assert rep["test_over_control"] == pytest.approx(0.95)
    assert "llem_over_control" not in rep and "control_over_control" not in rep


class Clock:
    """Seconds since the run began; each segment a fake worker runs moves it on."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeWorker:
    """A worker process's ``ask``: each segment costs 1 s of the clock; a stage transition
    costs ``stage_s``."""

    def __init__(self, clock: Clock, tok_per_s: float, stage_s: float = 0.0) -> None:
        self.clock, self.tok, self.stage_s = clock, tok_per_s, stage_s

    def ask(self, **req: Any) -> dict[str, Any]:
        if "stage" in req:
            self.clock.now += self.stage_s
            return {"stage": req["stage"]}
        self.clock.now += 1.0
        return seg(self.tok)


def run_plan(stages: list[str], rounds: int, deadline: float, stage_s: float = 0.0
             ) -> tuple[dict[str, Any], Clock, list[str]]:
    clock = Clock()
    tests = {f"t{i}": FakeWorker(clock, 96.0, stage_s=stage_s) for i in range(2)}
    controls = {f"c{i}": FakeWorker(clock, 100.0) for i in range(2)}
    report: dict[str, Any] = {"stages": {}, "transitions": {}}
    saved: list[str] = []
    plan = process_state.Plan(stages, rounds, 4, deadline)
    process_state.run_stages(plan, tests, controls, 8, report, clock, saved.append)
    return report, clock, saved


def test_every_stage_runs_its_rounds_when_time_allows() -> None:
    report, clock, saved = run_plan(["fresh", "imported", "ran"], 10, 1000.0)
    assert saved == ["fresh", "imported", "ran"] and "skipped_from" not in report
    for stage in saved:
        assert report["stages"][stage]["rounds"] == 10
        assert report["stages"][stage]["cut_by_deadline"] is False
    assert report["stages"]["ran"]["test_over_control"] == pytest.approx(0.96)
    assert set(report["stages"]["ran"]["segments"][0]) == {"t0", "t1", "c0", "c1", "l0", "l1"}
    assert set(report["transitions"]) == {"imported", "ran"}
    assert clock.now == 10 * 4 * 2 + 10 * 6


def test_the_deadline_cuts_a_stages_rounds_but_keeps_what_ran() -> None:
    # fresh: 10 rounds of 4 s = 40 s; 'imported' runs until one more round would end past
    # 70 s: 7 rounds
    report, clock, saved = run_plan(["fresh", "imported", "ran"], 10, 70.0)
    assert report["stages"]["fresh"]["rounds"] == 10
    imported = report["stages"]["imported"]
    assert imported["rounds"] == 7 and imported["cut_by_deadline"] is True
    assert clock.now <= 70.0
    # no room left for 4 rounds of 'ran' (6 s each) and its llem run
    assert report["skipped_from"] == "ran" and saved == ["fresh", "imported"]


def test_a_stage_that_cannot_fit_its_fewest_rounds_is_skipped() -> None:
    # after fresh (40 s), 4 rounds of 'ran' need 4 x 6 + 30 s = 54 s: 93 s is too little
    report, _, saved = run_plan(["fresh", "ran"], 10, 93.0, stage_s=15.0)
    assert saved == ["fresh"] and report["skipped_from"] == "ran"
    # with 94 s, its llem runs take the 30 s they were given and 4 rounds fit, no more
    report, clock, saved = run_plan(["fresh", "ran"], 10, 94.0, stage_s=15.0)
    assert saved == ["fresh", "ran"] and report["stages"]["ran"]["rounds"] == 4
    assert clock.now == 94.0


class CpuBare:
    """Stands in for bare_generate's worker, whose loop needs CUDA: one matmul a segment
    (what the ``probed`` stage's counter has to count)."""

    def segment(self, batch: int, seconds: float) -> dict[str, Any]:
        import torch

        torch.ones(batch, 16) @ torch.ones(16, 4)
        return {"batch": batch, "tok_per_s": 1.0}


class CpuTestProcess(psw.TestProcess):
    """The test process on the CPU: llem's real stages on the launch-bound shape of
    window_cost_cpu, a stand-in bare worker; the stages are what is tested."""

    def __init__(self) -> None:
        super().__init__(2, bare=CpuBare())

    def _spec(self) -> Any:
        import window_cost_cpu

        from llem_schema.config import ExperimentConfig
        from llem_schema.runspec import RunSpec

        raw = self._llem.config(self.batch, 0.05, "default").model_dump()
        raw["model"] = f"builtin:{window_cost_cpu.SHAPE_NAME}"
        raw["workload"]["input_len"] = 8
        raw["decoding"]["max_new_tokens"] = 4
        raw["measurement"]["baseline_seconds"] = 0.2
        cfg = ExperimentConfig.model_validate(raw)
        return RunSpec(experiment_id=cfg.name, run_id=self.stage, config=cfg,
                       config_hash=cfg.config_hash(), gpus=[])


def test_the_test_process_takes_on_llem_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import window_cost_cpu

    from llem_harness.backends import builtin_models

    # the launch-bound shape for this test only: the host's list of built-in models is
    # held equal to the harness's (tests/unit/llem/config/test_preflight.py)
    monkeypatch.setitem(builtin_models.SHAPES, window_cost_cpu.SHAPE_NAME, window_cost_cpu.SHAPE)
    # the 'imported' stage imports llem_worker, which wraps setup.load and windows.measure:
    # the tests after this one get llem's own again
    from llem_harness.phases import setup, windows

    monkeypatch.setattr(setup, "load", setup.load)
    monkeypatch.setattr(windows, "measure", windows.measure)
    monkeypatch.delitem(sys.modules, "llem_worker", raising=False)
    proc = CpuTestProcess()
    try:
        with pytest.raises(ValueError, match="'llem' after 'ran'"):
            proc.segment("llem", 0.1)
        # a stage asked for takes on the ones before it first, in llem's order
        reply = proc.advance("loaded")
        assert reply["stage"] == "loaded"
        assert proc._llem is not None and proc._ctx is not None
        # 'probed' was taken on the way: llem's counter ran over one bare segment
        assert reply["flops"] == 2 * 2 * 16 * 4
        with pytest.raises(ValueError, match="later stages: instruments, ran"):
            proc.advance("imported")
        for stage in psw.STAGES[psw.STAGES.index("instruments"):]:
            assert proc.advance(stage)["stage"] == stage
        with pytest.raises(ValueError, match="none"):
            proc.advance("ran")
        win = proc.segment("llem", 0.05)
        assert win["side"] == "llem" and win["stage"] == "ran" and win["tok_per_s"] > 0
        assert (proc._dir / "ran" / "result.json").is_file()
    finally:
        proc.close()
        sys.modules.pop("llem_worker", None)
    assert not proc._dir.exists()  # nothing left in /tmp
