"""Which part of llem's worker process slows the same decode loop: a stage-by-stage bisection
on the GPU, in one run.

Within one process, llem's ``generate``, llem's window and the bare call on llem's model or
on the reference's own model run alike (window_cost_cpu.py --device cuda, sessions 18-19);
across processes, llem's worker runs 3-4% under the bare process at batch 8 (session 19).
So the cause is something llem's worker process carries. Here ``--tests`` processes
(process_state_worker.py, started with llem worker's PYTHONPATH) run the bare loop's own
code on their own model while they take on llem one stage at a time (fresh, imported,
probed, loaded, instruments, ran: process_state_worker.STAGES), and ``--controls`` plain
bare processes (bare_generate.py, the bare loop's environment) run the same loop beside
them. In every round each process runs one segment (one ``generate`` call of the batch),
in mirrored order, every launching thread on one core (``--launch-core``), so a round's
segments share the machine's minute and the core's speed.

Per stage: test / control paired by round (each test segment over the mean of the round's
control segments; interval clustered by test process), and control / control (the noise
floor of two identical processes). After ``ran``, llem's own window as a side too (llem /
control, and llem / the bare loop in its own process). The first stage whose test / control
falls from the fresh stage's is what to look at.

    python benchmarks/process_state.py --out DIR [--batch 8] [--rounds 10] [--tests 2]
        [--controls 2] [--launch-core 4] [--cpus 4-5] [--deadline 540] [--min-rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpu_steadiness import pinned, probe
from gpu_validation import LAUNCH_CORE_ENV, REFS, Worker, _env, median_ci95, median_ci95_clustered
from process_state_worker import STAGES

HERE = Path(__file__).resolve().parent


def round_order(names: list[str], r: int) -> list[str]:
    """Mirrored: forwards on even rounds, backwards on odd ones."""
    return list(names) if r % 2 == 0 else list(reversed(names))


def stage_summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Ratios of one stage's rounds (each round: process name -> its segment). Names
    starting ``t`` are test processes, ``c`` controls, ``l`` llem's window in test process
    ``t`` + the rest of the name."""
    def tps(seg: dict[str, Any]) -> float:
        return float(seg["tok_per_s"])

    out: dict[str, Any] = {"rounds": len(rounds)}
    groups: dict[str, list[float]] = {}
    llem_c: dict[str, list[float]] = {}
    llem_t: dict[str, list[float]] = {}
    cc: list[float] = []
    for rnd in rounds:
        controls = [tps(s) for k, s in sorted(rnd.items()) if k.startswith("c")]
        c_mean = statistics.mean(controls)
        if len(controls) > 1:
            cc.append(controls[0] / controls[1])
        for k, s in rnd.items():
            if k.startswith("t"):
                groups.setdefault(k, []).append(tps(s) / c_mean)
            elif k.startswith("l"):
                llem_c.setdefault(k, []).append(tps(s) / c_mean)
                llem_t.setdefault(k, []).append(tps(s) / tps(rnd["t" + k[1:]]))
    for name, g in (("test_over_control", groups), ("llem_over_control", llem_c),
                    ("llem_over_test", llem_t)):
        if g:
            flat = [x for v in g.values() for x in v]
            out[name] = statistics.median(flat)
            out[name + "_ci95"] = median_ci95_clustered(list(g.values()))
            out[name + "_by_process"] = {k: statistics.median(v) for k, v in sorted(g.items())}
    if cc:
        out["control_over_control"] = statistics.median(cc)
        out["control_over_control_ci95"] = median_ci95(cc)
    out["tok_per_s"] = {k: statistics.median(tps(r[k]) for r in rounds if k in r)
                        for k in sorted({k for r in rounds for k in r})}
    return out


#: 'ran' takes on a whole llem run first (warm-up check, baseline, both windows, FLOPs)
RAN_TRANSITION_S = 30.0
#: 'ran' rounds carry llem's window a test process as well: 6 segments against 4
RAN_ROUND_FACTOR = 1.5


@dataclass
class Plan:
    """Stages to measure and the time they have. A stage runs ``rounds`` rounds, fewer when
    the deadline comes first, but never under ``min_rounds``: a stage that cannot fit those
    is skipped with the rest. (Session 22's half-speed machine took ~110 s a stage, and the
    all-or-nothing rule before this skipped two stages that had room for several rounds.)"""

    stages: list[str]
    rounds: int
    min_rounds: int
    deadline: float

    def fits(self, elapsed: float, stage: str, round_s: float | None) -> bool:
        """Whether ``min_rounds`` of ``stage`` (and its transition) fit before the deadline,
        from the seconds a round took in the stage before (none yet: it fits)."""
        if round_s is None:
            return True
        factor = RAN_ROUND_FACTOR if stage == "ran" else 1.0
        need = self.min_rounds * round_s * factor + (RAN_TRANSITION_S if stage == "ran" else 0)
        return elapsed + need <= self.deadline

    def another_round(self, done: int, elapsed: float, round_s: float) -> bool:
        """Whether to run round ``done`` (0-based) of a stage: all ``rounds``, unless one
        more would end past the deadline and ``min_rounds`` are done."""
        if done >= self.rounds:
            return False
        return done < self.min_rounds or elapsed + round_s <= self.deadline


def run_stages(plan: Plan, tests: dict[str, Any], controls: dict[str, Any], batch: int,
               report: dict[str, Any], elapsed: Callable[[], float],
               save: Callable[[str], None]) -> None:
    """Each stage of the plan in order: the test processes take it on, then mirrored rounds
    of one segment a process (and, after 'ran', llem's window a test process). Workers are
    anything with ``ask(**request) -> dict``; ``elapsed`` is seconds since the run began."""
    procs = tests | controls
    round_s: float | None = None
    for stage in plan.stages:
        if not plan.fits(elapsed(), stage, round_s):
            report["skipped_from"] = stage
            return
        if stage != "fresh":
            report["transitions"][stage] = {k: w.ask(stage=stage) for k, w in tests.items()}
        names = list(procs) + ([f"l{k[1:]}" for k in tests] if stage == "ran" else [])
        rounds: list[dict[str, Any]] = []
        last = 0.0
        while plan.another_round(len(rounds), elapsed(), last):
            r0 = elapsed()
            rnd = {}
            for k in round_order(names, len(rounds)):
                if k.startswith("l"):
                    rnd[k] = tests["t" + k[1:]].ask(side="llem", seconds=0.1)
                else:
                    rnd[k] = procs[k].ask(batch=batch, seconds=0.1, side="bare")
            rounds.append(rnd)
            last = elapsed() - r0
        # per plain round: what the next stage's rounds will cost
        round_s = last / (RAN_ROUND_FACTOR if stage == "ran" else 1.0)
        report["stages"][stage] = stage_summary(rounds) | {
            "cut_by_deadline": len(rounds) < plan.rounds, "segments": rounds}
        save(stage)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--tests", type=int, default=2)
    ap.add_argument("--controls", type=int, default=2)
    ap.add_argument("--cpus", default="4-5", help="every process pinned to these cores")
    ap.add_argument("--launch-core", default="4", help="every launching thread on this core")
    ap.add_argument("--stages", default=",".join(STAGES[1:]),
                    help="stages to measure after 'fresh', in llem's order; one left out is "
                         "taken on unmeasured (session 20's call ran out of time before 'ran': "
                         "--stages imported,probed,ran measures llem's imports, its FLOPs counter "
                         "alone and a finished run)")
    ap.add_argument("--deadline", type=float, default=540.0,
                    help="seconds; a stage's rounds stop before it (at --min-rounds the "
                         "earliest), and a stage that cannot fit --min-rounds is skipped")
    ap.add_argument("--min-rounds", type=int, default=4,
                    help="fewest rounds a stage may be cut to by the deadline")
    args = ap.parse_args()
    t0 = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ[LAUNCH_CORE_ENV] = args.launch_core
    report: dict[str, Any] = {"args": vars(args), "stages": {}, "transitions": {}}
    report["cpu_before"] = probe(args.launch_core, 5.0)
    tests = {f"t{i}": Worker([sys.executable, str(HERE / "process_state_worker.py"),
                              str(args.batch)], _env(None), out / f"t{i}.log",
                             pinned(args.cpus)) for i in range(args.tests)}
    controls = {f"c{i}": Worker([sys.executable, str(REFS / "bare_generate.py"), "--serve"],
                                _env(""), out / f"c{i}.log", pinned(args.cpus))
                for i in range(args.controls)}
    procs = tests | controls
    try:
        for w in procs.values():
            w.ready  # noqa: B018  all load at once
        for w in procs.values():  # each pays its warm-up outside the rounds
            w.ask(batch=args.batch, seconds=0.1)
        plan = Plan(["fresh"] + [s for s in args.stages.split(",") if s], args.rounds,
                    args.min_rounds, args.deadline)

        def save(stage: str) -> None:
            (out / "process_state.json").write_text(json.dumps(report, indent=1))
            print(json.dumps({stage: {k: v for k, v in report["stages"][stage].items()
                                      if k != "segments"}}), flush=True)

        run_stages(plan, tests, controls, args.batch, report, lambda: time.monotonic() - t0,
                   save)
    finally:
        for w in procs.values():
            w.close()
    report["cpu_after"] = probe(args.launch_core, 5.0)
    (out / "process_state.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
