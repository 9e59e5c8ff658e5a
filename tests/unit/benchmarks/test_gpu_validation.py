"""gpu_validation: the alternation order, the peer runs between rounds, the peer worker's
pairing and the peer tables."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import gpu_validation
import validation_report


class FakeWorker:
    """Answers every segment with a fixed throughput and records the order of calls."""

    def __init__(self, name: str, tok_per_s: float, calls: list[str]) -> None:
        self.name, self.tok_per_s, self.calls = name, tok_per_s, calls

    def ask(self, **req: Any) -> dict[str, Any]:
        self.calls.append(req.get("setting", self.name))
        return {"tok_per_s": self.tok_per_s, "j_per_token": 1000 / self.tok_per_s}


def test_rounds_alternate_and_the_peer_runs_midway() -> None:
    calls: list[str] = []
    bares = {"bare": FakeWorker("bare", 100.0, calls),
             "bare-tf4": FakeWorker("bare-tf4", 125.0, calls)}
    llem = FakeWorker("llem", 98.0, calls)
    rows = gpu_validation.alternate(bares, llem, 8, 4, 1.0, ["default"],  # type: ignore[arg-type]
                                    midway=lambda b: calls.append(f"peer-{b}"))
    assert calls == ["bare", "bare-tf4", "default", "default", "bare-tf4", "bare",
                     "peer-8",
                     "bare", "bare-tf4", "default", "default", "bare-tf4", "bare"]
    (row,) = rows
    assert row["throughput_ratio"] == 0.98
    assert row["bare_tf4_tok_per_s"] == 125.0
    assert len(row["segments"]["bare-tf4"]) == 4


def test_peer_table_takes_the_median_of_a_batch_and_shows_each_side() -> None:
    parity = [{"batch": 8, "setting": "default", "llem_tok_per_s": 98.0,
               "bare_tok_per_s": 100.0, "bare_tf4_tok_per_s": 125.0}]
    peer = [{"batch": 8, "tok_per_s": 110.0}, {"batch": 8, "tok_per_s": 130.0},
            {"batch": 8, "tok_per_s": 120.0}]
    lines = validation_report._peer(peer, parity)
    row = next(line for line in lines if line.startswith("| 8 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["8", "110.0, 130.0, 120.0", "98.0", "0.817", "0.833", "1.042"]


def test_every_side_has_the_same_mean_position_in_time() -> None:
    """Three sides (bare, the peer's worker, llem): odd rounds run the sequence backwards,
    so linear drift over the rounds favours none of them."""
    calls: list[str] = []
    bares = {"bare": FakeWorker("bare", 100.0, calls),
             "optimum": FakeWorker("optimum", 101.0, calls)}
    gpu_validation.alternate(bares, FakeWorker("llem", 99.0, calls), 1, 4, 1.0,  # type: ignore[arg-type]
                             ["default"])
    assert calls[:6] == ["bare", "optimum", "default", "default", "optimum", "bare"]
    positions = {k: [i for i, c in enumerate(calls) if c == k] for k in set(calls)}
    means = {k: sum(v) / len(v) for k, v in positions.items()}
    assert len(set(means.values())) == 1, means


def test_one_shot_peer_runs_spread_evenly_over_the_rounds() -> None:
    assert gpu_validation.peer_rounds(4, 1) == [2]
    assert gpu_validation.peer_rounds(6, 2) == [2, 4]
    assert gpu_validation.peer_rounds(4, 3) == [1, 2, 3]
    calls: list[str] = []
    gpu_validation.alternate({"bare": FakeWorker("bare", 100.0, calls)},  # type: ignore[dict-item]
                             FakeWorker("llem", 99.0, calls), 8, 6, 1.0,  # type: ignore[arg-type]
                             ["default"], midway=lambda b: calls.append("peer"), peer_runs=2)
    assert [i for i, c in enumerate(calls) if c == "peer"] == [4, 9]


class Drifting(FakeWorker):
    """A side whose throughput follows the machine's drift: each call a step slower."""

    def __init__(self, name: str, tok_per_s: float, calls: list[str]) -> None:
        super().__init__(name, tok_per_s, calls)
        self.n = 0

    def ask(self, **req: Any) -> dict[str, Any]:
        self.calls.append(req.get("setting", self.name))
        rate = self.tok_per_s * (1 - 0.01 * len(self.calls))
        return {"tok_per_s": rate, "j_per_token": 1000 / rate}


def test_the_peer_worker_is_paired_round_by_round_and_tabled() -> None:
    calls: list[str] = []
    bares = {"bare": Drifting("bare", 100.0, calls),
             "optimum": Drifting("optimum", 100.0, calls)}
    (row,) = gpu_validation.alternate(bares, Drifting("llem", 100.0, calls), 32, 4, 1.0,  # type: ignore[arg-type]
                                      ["default"])
    assert len(row["segments"]["optimum"]) == 4
    assert len(row["paired_over_optimum"]) == 4
    # identical sides under linear drift: the medians of mirrored rounds agree exactly
    assert abs(row["llem_over_optimum"] - 1.0) < 1e-9
    assert abs(row["bare_over_optimum"] - 1.0) < 1e-9
    lines = validation_report._peer_worker([row])
    table = next(line for line in lines if line.startswith("| 32 "))
    cells = [c.strip() for c in table.strip("|").split("|")]
    assert cells[0] == "32" and cells[6] == "1.000"
    lo, hi = row["paired_over_optimum_ci95"]
    assert cells[7].startswith(f"{row['paired_over_optimum_median']:.3f} [{lo:.3f}, {hi:.3f}] (")


def test_a_failed_one_shot_peer_run_is_left_out_of_the_median() -> None:
    parity = [{"batch": 1, "setting": "default", "llem_tok_per_s": 80.0,
               "bare_tok_per_s": 80.0}]
    peer = [{"batch": 1, "rc": 0, "tok_per_s": 80.0}, {"batch": 1, "rc": 1, "tok_per_s": 1.0}]
    row = next(line for line in validation_report._peer(peer, parity)
               if line.startswith("| 1 "))
    assert row.split("|")[2].strip() == "80.0"


def test_the_report_says_when_segment_noise_exceeds_what_it_judges() -> None:
    quiet = [{"tok_per_s": x} for x in (100.0, 101.0, 99.0, 100.5)]
    noisy = [{"tok_per_s": x} for x in (100.0, 130.0, 80.0, 115.0)]
    assert gpu_validation.spread_pct(quiet) < 1.0
    assert gpu_validation.spread_pct(noisy) > 15.0
    assert gpu_validation.spread_pct(quiet[:1]) is None
    calm = validation_report._spread([{"batch": 1, "spread_pct": {"bare": 0.8}}])
    assert "can judge" in calm[0] and "CANNOT" not in calm[0]
    rough = validation_report._spread([{"batch": 1, "spread_pct": {"bare": 0.8,
                                                                  "default": 17.2}}])
    assert "CANNOT judge" in rough[0] and "17.2%" in rough[0]


def test_sides_shared_by_two_llem_settings_are_listed_once() -> None:
    rows = [{"batch": 8, "spread_pct": {"bare": 8.8, "optimum": 5.7, "default": 8.0}},
            {"batch": 8, "spread_pct": {"bare": 8.8, "optimum": 5.7, "inproc-own": 10.9}}]
    (line, _) = validation_report._spread(rows)
    assert line.count("b8 bare 8.8%") == 1 and line.count("b8 optimum 5.7%") == 1
    assert "b8 default 8.0%" in line and "b8 inproc-own 10.9%" in line


def test_narrow_paired_intervals_decide_even_when_segments_swing() -> None:
    swinging = {"batch": 8, "spread_pct": {"bare": 20.0, "default": 22.0},
                "paired_ratio_median": 1.0, "paired_ratio_ci95": [0.99, 1.02],
                "paired_over_optimum_median": 1.01, "paired_over_optimum_ci95": [0.99, 1.035]}
    (line, _) = validation_report._spread([swinging])
    assert "can judge" in line and "paired" in line and "b8 llem/optimum" in line
    wide = swinging | {"paired_over_optimum_ci95": [0.9, 1.1]}
    (line, _) = validation_report._spread([swinging, wide | {"batch": 32}])
    assert "CANNOT judge" in line and "b32 llem/optimum" in line and "10.9%" in line
    # a row without intervals falls back to the segment rule
    (line, _) = validation_report._spread([swinging, {"batch": 1, "spread_pct": {"bare": 20.0}}])
    assert "CANNOT judge" in line and "20.0%" in line


def test_window_only_requests_reach_llem_and_not_the_bare_loop() -> None:
    seen: list[dict[str, Any]] = []

    class Recording(FakeWorker):
        def ask(self, **req: Any) -> dict[str, Any]:
            seen.append(req)
            return super().ask(**req)

    calls: list[str] = []
    gpu_validation.alternate({"bare": Recording("bare", 100.0, calls)},  # type: ignore[dict-item]
                             Recording("llem", 99.0, calls), 1, 2, 0.1,  # type: ignore[arg-type]
                             ["default"], llem_req={"window_only": True})
    assert [r.get("window_only") for r in seen] == [None, True, True, None]


def test_the_paired_interval_is_narrow_when_quiet_and_straddles_when_noisy() -> None:
    quiet = [0.99, 1.0, 1.01, 1.0, 0.995, 1.005]
    noisy = [0.8, 1.1, 0.9, 1.2, 0.95, 1.05]
    lo, hi = gpu_validation.median_ci95(quiet)
    assert 0.99 <= lo <= 1.0 <= hi <= 1.01
    lo, hi = gpu_validation.median_ci95(noisy)
    assert lo < 0.97 and hi > 1.03
    assert gpu_validation.median_ci95(quiet) == gpu_validation.median_ci95(quiet)
    assert gpu_validation.median_ci95([1.0, 1.0]) is None


def test_each_one_shot_peer_run_of_a_batch_gets_its_own_file(tmp_path: Path) -> None:
    (tmp_path / "optimum-b128.json").write_text("{}")  # another batch: not a run of batch 1
    assert gpu_validation.peer_output(tmp_path, 1) == (1, tmp_path / "optimum-b1.json")
    (tmp_path / "optimum-b1.json").write_text("{}")
    assert gpu_validation.peer_output(tmp_path, 1) == (2, tmp_path / "optimum-b1-2.json")
    (tmp_path / "optimum-b1-2.json").write_text("{}")
    assert gpu_validation.peer_output(tmp_path, 1) == (3, tmp_path / "optimum-b1-3.json")
    assert gpu_validation.peer_output(tmp_path, 128) == (2, tmp_path / "optimum-b128-2.json")


def test_energy_per_token_is_paired_round_by_round_and_tabled() -> None:
    calls: list[str] = []
    bares = {"bare": Drifting("bare", 100.0, calls)}
    # llem 2% slower each round, so 2% more J/token than the bare segment beside it
    (row,) = gpu_validation.alternate(bares, Drifting("llem", 98.0, calls), 8, 4, 1.0,  # type: ignore[arg-type]
                                      ["default"])
    assert row["paired_energy_ratio_median"] > 1.0
    lo, hi = row["paired_energy_ratio_ci95"]
    assert lo <= row["paired_energy_ratio_median"] <= hi
    table = next(line for line in validation_report._parity([row], "t")
                 if line.startswith("| 8 "))
    cell = [c.strip() for c in table.strip("|").split("|")][9]
    assert cell.startswith(f"{row['paired_energy_ratio_median']:.3f} [{lo:.3f}, {hi:.3f}]")


def test_pairs_without_the_key_are_skipped() -> None:
    llem = [{"tok_per_s": 10.0, "j_per_token": 2.0}, {"tok_per_s": 10.0, "j_per_token": None}]
    bare = [{"tok_per_s": 5.0, "j_per_token": 1.0}, {"tok_per_s": 5.0, "j_per_token": 1.0}]
    assert gpu_validation._paired(llem, bare) == [2.0, 2.0]
    assert gpu_validation._paired(llem, bare, "j_per_token") == [2.0]


def test_a_bare_loop_in_llems_environment_is_summarised_and_listed_like_the_others() -> None:
    """--bare-llem-env's side keeps its segments, median and spread in the batch's row, and
    the segment table lists it after the bare loop."""
    calls: list[str] = []
    bares = {"bare": FakeWorker("bare", 100.0, calls),
             "bare-llemenv": FakeWorker("bare-llemenv", 97.0, calls)}
    (row,) = gpu_validation.alternate(bares, FakeWorker("llem", 98.0, calls), 8, 4, 1.0,  # type: ignore[arg-type]
                                      ["default"])
    assert row["bare_llemenv_tok_per_s"] == 97.0
    assert len(row["segments"]["bare-llemenv"]) == 4
    assert "bare-llemenv" in row["spread_pct"]
    table = validation_report._segments([row])
    names = [line.split("|")[2].strip() for line in table[2:] if line.startswith("| 8 ")]
    assert names == ["bare", "bare-llemenv", "llem default"]


class ProcWorker(FakeWorker):
    """A fake worker process with its own speed (as two processes of one loop differ)."""

    def __init__(self, name: str, tok_per_s: float, calls: list[str], tag: str) -> None:
        super().__init__(name, tok_per_s, calls)
        self.tag = tag

    def ask(self, **req: Any) -> dict[str, Any]:
        self.calls.append(self.tag)
        return {"tok_per_s": self.tok_per_s, "j_per_token": 1000 / self.tok_per_s}


def pools(kind: type[ProcWorker], calls: list[str], llem_speeds: tuple[float, ...]
          ) -> tuple[dict[str, Any], Any]:
    """A bare side of two processes at 100 tok/s and a llem side of one process per speed."""
    bares = {"bare": gpu_validation.WorkerPool(
        [kind("bare", 100.0, calls, f"bare{i}") for i in range(2)])}
    return bares, gpu_validation.WorkerPool(
        [kind("llem", v, calls, f"llem{i}") for i, v in enumerate(llem_speeds)])


def test_worker_pools_give_each_mirrored_pair_of_rounds_to_the_next_process() -> None:
    calls: list[str] = []
    bares, llem = pools(ProcWorker, calls, (90.0, 100.0))
    (row,) = gpu_validation.alternate(bares, llem, 8, 4, 1.0, ["default"])  # type: ignore[arg-type]
    assert calls == ["bare0", "llem0", "llem0", "bare0", "bare1", "llem1", "llem1", "bare1"]
    assert [s["process"] for s in row["segments"]["llem"]] == [0, 0, 1, 1]
    assert row["paired_ratio_by_process"] == {"0": 0.9, "1": 1.0}
    lo, hi = row["paired_ratio_ci95"]
    assert lo == 0.9 and hi == 1.0  # the interval spans both processes' ratios
    report = "\n".join(validation_report._processes([row]))
    assert "llem/bare 0.900, 1.000" in report


def test_the_clustered_interval_carries_the_spread_between_groups() -> None:
    """Rounds alone (one group) give a narrow interval; the same ratios split into groups
    that differ as wholes give a wider one, and one group gives median_ci95's."""
    a = [0.95 + 0.001 * i for i in range(10)]
    b = [1.00 + 0.001 * i for i in range(10)]
    pooled = gpu_validation.median_ci95(a + b)
    clustered = gpu_validation.median_ci95_clustered([a, b])
    assert pooled is not None and clustered is not None
    assert clustered[1] - clustered[0] > pooled[1] - pooled[0]
    assert gpu_validation.median_ci95_clustered([a]) == gpu_validation.median_ci95(a)
    assert gpu_validation.median_ci95_clustered([[1.0], []]) is None


def _parity_with_fake_processes(tmp_path: Path, monkeypatch: Any, processes: int
                                ) -> tuple[list[Any], dict[str, Any]]:
    import argparse

    started: list[Any] = []

    class FakeProcess:
        def __init__(self, argv: list[str], env: dict[str, str], log: Path,
                     preexec: Any = None) -> None:
            self.argv, self.log, self.closed = argv, log, False
            self.ready = {"ready": True}
            started.append(self)

        def ask(self, **req: Any) -> dict[str, Any]:
            return {"tok_per_s": 100.0, "j_per_token": 1.0}

        ask_each = gpu_validation.Worker.ask_each  # the real one, on this ask

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(gpu_validation, "Worker", FakeProcess)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    args = argparse.Namespace(processes=processes, bare_cpus=None, llem_cpus=None, peer_cpus=None,
                              bare_tf4=False, bare_llem_env=True, peer_worker=True,
                              ob_path="/nowhere", ref_model=str(model), rounds=4,
                              seconds=0.1, peer_runs=0, llem_window_only=True)
    (row,) = gpu_validation.parity(args, tmp_path, "eager", ["default"], [8])
    return started, row


def test_parity_starts_every_side_in_k_processes_and_closes_them(tmp_path: Path,
                                                                 monkeypatch: Any) -> None:
    """--processes 2: two workers per side (bare, bare-llemenv, the peer, llem), each with
    its own log (and llem its own results folder under llem/), all closed afterwards."""
    started, row = _parity_with_fake_processes(tmp_path, monkeypatch, 2)
    logs = sorted(w.log.name for w in started)
    assert logs == ["bare-eager-0.log", "bare-eager-1.log", "bare-llemenv-eager-0.log",
                    "bare-llemenv-eager-1.log", "llem-default-0.log", "llem-default-1.log",
                    "optimum-worker-0.log", "optimum-worker-1.log"]
    llem_dirs = [w.argv[w.argv.index("--out") + 1] for w in started if "--out" in w.argv]
    assert llem_dirs == [str(tmp_path / "llem" / "p0"), str(tmp_path / "llem" / "p1")]
    assert all(w.closed for w in started)
    assert row["paired_ratio_by_process"] == {"0": 1.0, "1": 1.0}


def test_one_process_per_side_keeps_the_earlier_file_names(tmp_path: Path,
                                                           monkeypatch: Any) -> None:
    started, row = _parity_with_fake_processes(tmp_path, monkeypatch, 1)
    assert sorted(w.log.name for w in started) == [
        "bare-eager.log", "bare-llemenv-eager.log", "llem-default.log", "optimum-worker.log"]
    llem = next(w for w in started if "--out" in w.argv)
    assert llem.argv[llem.argv.index("--out") + 1] == str(tmp_path / "llem")
    assert "paired_ratio_by_process" not in row


def test_a_worker_starts_without_waiting_and_its_ready_line_is_never_an_answer(
        tmp_path: Path) -> None:
    """Workers start at once (the ready line is read on first use); an ask before anyone
    read it still gets the answer to the request."""
    echo = ("import json, sys\nprint(json.dumps({'ready': True}), flush=True)\n"
            "for line in sys.stdin:\n    req = json.loads(line)\n"
            "    if req.get('quit'):\n        break\n"
            "    print(json.dumps({'echo': req['x']}), flush=True)\n")
    script = tmp_path / "echo.py"
    script.write_text(echo)
    workers = [gpu_validation.Worker([sys.executable, str(script)], dict(os.environ),
                                     tmp_path / f"w{i}.log") for i in range(2)]
    try:
        assert workers[0].ask(x=1) == {"echo": 1}
        assert workers[1].ready == {"ready": True}
        assert workers[1].ask(x=2) == {"echo": 2}
    finally:
        for w in workers:
            w.close()
    assert all(w.proc.poll() is not None for w in workers)


def test_parity_closes_every_side_when_one_fails_to_start(tmp_path: Path,
                                                         monkeypatch: Any) -> None:
    import argparse

    started: list[Any] = []

    class FailingLlem:
        def __init__(self, argv: list[str], env: dict[str, str], log: Path,
                     preexec: Any = None) -> None:
            self.argv, self.closed = argv, False
            started.append(self)

        @property
        def ready(self) -> dict[str, Any]:
            if "--out" in self.argv:
                raise RuntimeError("worker exited (rc 1)")
            return {"ready": True}

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(gpu_validation, "Worker", FailingLlem)
    args = argparse.Namespace(processes=2, bare_cpus=None, llem_cpus=None, peer_cpus=None,
                              bare_tf4=False, bare_llem_env=True, peer_worker=False,
                              ob_path="/nowhere", ref_model=str(tmp_path), rounds=2,
                              seconds=0.1, peer_runs=0, llem_window_only=True)
    with pytest.raises(RuntimeError, match="worker exited"):
        gpu_validation.parity(args, tmp_path, "eager", ["default"], [8])
    assert len(started) == 6 and all(w.closed for w in started)


def _main(monkeypatch: Any, tmp_path: Path, cv: float, *extra: str) -> tuple[int, dict]:
    """gpu_validation.main with a fake steadiness probe and a parity part that only counts."""
    ran: list[str] = []
    monkeypatch.setattr(gpu_validation, "probe", lambda cpus, s: {
        "cpus": cpus, "seconds": s, "cv_pct": cv, "slowest_over_fastest": 0.5})
    monkeypatch.setattr(gpu_validation, "parity",
                        lambda *a, **k: ran.append("parity") or [])
    monkeypatch.setattr(sys, "argv", ["gpu_validation.py", "--out", str(tmp_path), "--parity",
                                      "--llem-cpus", "4-5", *extra])
    import external_check

    class NoLog:
        def __init__(self, gpus: list[int]) -> None: ...
        def __enter__(self) -> NoLog: return self
        def __exit__(self, *exc: Any) -> None: ...

    monkeypatch.setattr(external_check, "CounterLog", NoLog)
    monkeypatch.setattr(external_check, "compare", lambda *a: [])
    rc = gpu_validation.main()
    rep = json.loads((tmp_path / "gpu_validation.json").read_text())
    rep["ran"] = ran
    return rc, rep


def test_an_unsteady_core_skips_the_comparison_and_says_why(monkeypatch: Any,
                                                            tmp_path: Path) -> None:
    rc, rep = _main(monkeypatch, tmp_path, 22.0, "--steady-check", "10")
    assert rc == 3 and rep["ran"] == [] and "22.0%" in rep["skipped"]
    assert set(rep["cpu_steadiness"]) == {"before"}
    md = (tmp_path / "gpu_validation.md").read_text()
    assert "cores 4-5" in md and "Comparison skipped" in md


def test_a_steady_core_is_probed_before_and_after(monkeypatch: Any, tmp_path: Path) -> None:
    rc, rep = _main(monkeypatch, tmp_path, 1.0, "--steady-check", "10")
    assert rc == 0 and rep["ran"] == ["parity"] and "skipped" not in rep
    assert set(rep["cpu_steadiness"]) == {"before", "after"}
    rc, rep = _main(monkeypatch, tmp_path, 50.0)  # off by default: never probed
    assert rc == 0 and rep["ran"] == ["parity"] and "cpu_steadiness" not in rep


class FirstSlow(ProcWorker):
    """A process whose first answer carries its warm-up (llem's: a full run with the GPU
    utilisation); later answers are window-only repeats."""

    def __init__(self, name: str, tok_per_s: float, calls: list[str], tag: str) -> None:
        super().__init__(name, tok_per_s, calls, tag)
        self.asked = 0

    def ask(self, **req: Any) -> dict[str, Any]:
        self.asked += 1
        self.calls.append(self.tag)
        if self.asked == 1:
            return {"tok_per_s": self.tok_per_s / 2, "gpu_util_mean_pct": 31.0}
        return {"tok_per_s": self.tok_per_s, "j_per_token": 1000 / self.tok_per_s}


def test_the_warm_pass_asks_every_process_once_before_the_rounds_and_pairs_none() -> None:
    calls: list[str] = []
    bares, llem = pools(FirstSlow, calls, (99.0, 99.0))
    (row,) = gpu_validation.alternate(bares, llem, 8, 4, 1.0, ["default"], warm=True)  # type: ignore[arg-type]
    assert calls[:4] == ["bare0", "bare1", "llem0", "llem1"]
    assert calls[4:] == ["bare0", "llem0", "llem0", "bare0", "bare1", "llem1", "llem1", "bare1"]
    # the slow first answers stay out of the pairs, their GPU utilisation in the row
    assert row["paired_ratios"] == [0.99] * 4
    assert row["llem_gpu_util_pct"] == 31.0
    assert [s["process"] for s in row["first_segments"]["llem"]] == [0, 1]
    assert len(row["first_segments"]["bare"]) == 2


def test_without_the_warm_pass_the_first_answers_are_paired() -> None:
    calls: list[str] = []
    (row,) = gpu_validation.alternate({"bare": FirstSlow("bare", 100.0, calls, "b")},  # type: ignore[dict-item]
                                      FirstSlow("llem", 99.0, calls, "l"), 8, 2, 1.0,  # type: ignore[arg-type]
                                      ["default"])
    assert calls == ["b", "l", "l", "b"] and "first_segments" not in row
    assert row["paired_ratios"] == [0.99, 0.99]


@pytest.mark.parametrize(("argv", "message"), [
    (["--launch-core", "4"], "--launch-core 4 needs --llem-cpus too"),
    (["--launch-core", "6", "--llem-cpus", "4-5", "--bare-cpus", "4-5"],
     "--launch-core 6 is not in --llem-cpus 4-5"),
    (["--launch-core", "4", "--llem-cpus", "4-5", "--bare-cpus", "4-5", "--peer-cpus", "5"],
     "--launch-core 4 is not in --peer-cpus 5"),
])
def test_a_launch_core_outside_a_sides_pin_exits_2_before_anything_runs(
        argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["gpu_validation.py", "--out", str(tmp_path / "o"),
                                      "--parity", *argv])
    assert gpu_validation.main() == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not (tmp_path / "o").exists()


def test_a_launch_core_inside_every_pin_is_accepted() -> None:
    import argparse

    ns = argparse.Namespace(launch_core=5, llem_cpus="4-5", bare_cpus="4-5", peer_cpus=None)
    assert gpu_validation.launch_core_error(ns) is None


@pytest.mark.parametrize(("launch_core", "probed"), [(4, "4"), (None, "4-5")])
def test_the_steadiness_probe_reads_the_launch_core_when_there_is_one(
        launch_core: int | None, probed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    seen: list[str | None] = []

    def fake_probe(cpus: str | None, seconds: float) -> dict[str, Any]:
        seen.append(cpus)
        return {"cpus": cpus, "cv_pct": 1.0}

    monkeypatch.setattr(gpu_validation, "probe", fake_probe)
    args = argparse.Namespace(launch_core=launch_core, llem_cpus="4-5", steady_check=10.0,
                              steady_max_cv=3.0)
    report: dict[str, Any] = {}
    assert gpu_validation.check_steady(args, report, "before")
    assert seen == [probed] and report["cpu_steadiness"]["before"]["cpus"] == probed
