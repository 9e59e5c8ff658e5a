"""GPU validation of llem's PyTorch path against references that share nothing with it.

Run on the GPU machine; every ratio is taken within this one run (issue 12):

* ``--parity``: llem's real harness (benchmarks/llem_worker.py) and an independent bare
  ``generate`` loop (benchmarks/references/bare_generate.py: own model construction,
  own synthetic prompts, no streamer, no llem import) run as two processes; their
  segments alternate (bare, llem, llem, bare, ...) so drift on the machine cancels, and
  medians are compared: throughput and energy per output token (each side reads the
  NVML counter over its own segment). ``--fast`` does the same for static cache +
  compile against transformers' documented static-cache + ``torch.compile`` recipe.
* ``--peer``: optimum-benchmark 0.6.0 (references/optimum_bench.py, its own
  transformers 4.57 stack first on PYTHONPATH) on a saved model of the same shape and the
  same synthetic workload, one process per batch size.
* ``--peer-interleave``: the same optimum-benchmark runs, but placed in the middle of each
  batch's alternation (half the rounds before, half after), so llem / peer is taken over
  the same minutes as llem / bare (the machine drifts up to 30% between minutes).
* ``--peer-runs N``: with ``--peer-interleave``, N one-shot runs per batch, spread evenly over
  its rounds (one run's own spread is unknown; the bare segments spread 2-6%).
* ``--peer-worker``: optimum-benchmark as a third side of every round
  (references/ob_worker.py: its unmodified scenario, segment after segment, on a model it
  loads once), so llem / optimum-benchmark is paired round by round like llem / bare.
  Every process of the comparison (llem, the bare loops, the peer's worker and one-shot
  runs) is pinned to the same cores (``--llem-cpus``, ``--bare-cpus``, ``--peer-cpus``):
  at 30-45% GPU utilisation the decode loop is bound by one CPU core, so a process the
  scheduler places on a less busy core would gain a percent or two for nothing it does.
* ``--llem-window-only``: after the first full run of each batch, llem's segments run only
  its measured window again on that run's loaded context (llem_worker.py's window-only
  requests). With ``--seconds`` below one generate call (e.g. 0.1), every side's segment
  is then one ``generate`` call of the batch: a round takes seconds, not the ~20 s a full
  llem run stretches it to, so a machine whose speed swings within tens of seconds (session
  8, 9: segments spread 8-34%) moves both sides of a pair alike and cancels out of the
  paired ratios. Every process of every side first answers each batch once outside the
  rounds (``warm_pass``: its warm-up, llem's full run), so no round waits on one.
* ``--bare-tf4``: a second bare loop, the same file run with the peer's transformers 4.57
  stack first on PYTHONPATH, in the bare slot of every round: it separates what
  transformers' version costs from what llem costs.
* ``--processes K``: every side (bare loops, the peer's worker, llem's worker) runs in K
  processes; each mirrored pair of rounds uses the next process of every side, and the
  paired intervals resample processes first, then rounds (``median_ci95_clustered``). Two
  processes of one identical launch-bound loop spread over ~3%
  (benchmarks/process_spread_cpu.py), which one process per side cannot tell from a cost
  of the code; this makes the intervals carry it.
* ``--bare-llem-env``: a third bare loop, the same file run with llem's worker's PYTHONPATH
  (llem's packages and their dependencies importable, none imported by it): it separates
  what llem's environment costs a process from what llem's code and run state cost (with
  the ``inproc-bare`` / ``inproc-own`` settings, which run the bare loop inside llem's
  worker).
* ``--energy``: the harness's energy against an independent NVML reader in another
  process over exactly its windows, other sources side by side (benchmarks/energy_check.py).

    python benchmarks/gpu_validation.py --out DIR --parity --fast --peer --energy \\
        [--batches 1,8,32,128] [--rounds 3] [--seconds 5] [--ob-path /tmp/tf4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cpu_steadiness import UNSTEADY, cpu_set, probe, steady
from cpu_steadiness import pinned as _pinned  # a worker's preexec_fn (parity_probe too)

HERE = Path(__file__).resolve().parent
REFS = HERE / "references"
#: what the workers read for --launch-core (references/cpu_probe.LAUNCH_CORE_ENV; the
#: references import nothing from here, so the name is spelled twice and a test holds them equal)
LAUNCH_CORE_ENV = "BENCH_LAUNCH_CORE"
#: the bare-slot key of optimum-benchmark's worker (--peer-worker)
PEER_WORKER = "optimum"
#: bare-loop variants a round may carry besides "bare" (--bare-tf4, --bare-llem-env)
BARE_VARIANTS = ("bare-tf4", "bare-llemenv")
T0 = time.monotonic()


class Worker:
    """A line-JSON worker process (one request in, one JSON line out). Starting one does
    not wait for its ready line (``ready`` does, once), so several load their models at
    the same time: at ``--processes 3`` a call's 15 workers took ~165 s one after another
    (benchmarks/results/h100-session13)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path,
                 preexec: Any = None) -> None:
        self._log = log.open("w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, bufsize=1, env=env,
                                     preexec_fn=preexec)
        self._ready: dict[str, Any] | None = None

    @property
    def ready(self) -> dict[str, Any]:
        """The worker's ready line, read (waited for) on first use."""
        if self._ready is None:
            self._ready = self._read()
        return self._ready

    def _read(self) -> dict[str, Any]:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker exited (rc {self.proc.poll()}); see {self._log.name}")
            if line.startswith("{"):
                return json.loads(line)

    def ask(self, **req: Any) -> dict[str, Any]:
        self.ready  # noqa: B018  the ready line first, never taken for an answer
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def ask_each(self, **req: Any) -> list[dict[str, Any]]:
        """Every process's answer: this one's (a :class:`WorkerPool` has several)."""
        return [self.ask(**req)]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"quit": true}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
        self._log.close()


class WorkerPool:
    """One side run by several processes of the same worker (``--processes``): the round
    sets ``turn`` and the pool asks its process ``turn % K``, tagging the segment with it.

    Why: processes of one identical decode loop spread over ~3%, some with intervals
    that exclude 1 (benchmarks/process_spread_cpu.py), a property of each process (its
    memory layout), not of the code. With one process per side that difference passes for
    llem's own cost and no number of rounds removes it; with several, the interval
    (:func:`median_ci95_clustered`) carries it."""

    def __init__(self, workers: list[Any]) -> None:
        self.workers, self.turn = workers, 0

    @property
    def ready(self) -> dict[str, Any]:
        """Every process's ready line (all waited for); the first one's."""
        readies = [w.ready for w in self.workers]
        return readies[0]

    def _ask(self, i: int, **req: Any) -> dict[str, Any]:
        return self.workers[i].ask(**req) | {"process": i}

    def ask(self, **req: Any) -> dict[str, Any]:
        return self._ask(self.turn % len(self.workers), **req)

    def ask_each(self, **req: Any) -> list[dict[str, Any]]:
        """Every process's answer in turn, each tagged with its process."""
        return [self._ask(i, **req) for i in range(len(self.workers))]

    def close(self) -> None:
        for w in self.workers:
            w.close()


def _side(make: Callable[[int], Worker], processes: int) -> Any:
    """One worker, or a pool of ``processes`` of them (``make(i)`` starts the i-th), not
    yet waited for (``ready``); the ones started are closed if a later one fails to start."""
    if processes <= 1:
        return make(0)
    started: list[Worker] = []
    try:
        for i in range(processes):
            started.append(make(i))
    except BaseException:
        for w in started:
            w.close()
        raise
    return WorkerPool(started)


def _env(extra_path: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if extra_path is not None:
        env["PYTHONPATH"] = extra_path
    return env


def _summary(rows: dict[str, list[dict[str, Any]]], batch: int, setting: str,
             first: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    def med(side: str, key: str, extra: Iterable[dict[str, Any]] = ()) -> float | None:
        vals = [x[key] for x in (*extra, *rows[side]) if x.get(key) is not None]
        return statistics.median(vals) if vals else None

    first = first or {}
    out = {"batch": batch, "setting": setting,
           "segments": {"bare": rows["bare"], "llem": rows[setting]},
           "bare_tok_per_s": med("bare", "tok_per_s"), "llem_tok_per_s": med(setting, "tok_per_s"),
           "bare_j_per_token": med("bare", "j_per_token"),
           "llem_j_per_token": med(setting, "j_per_token"),
           # a full run's GPU utilisation: the warm pass's runs where there was one
           "llem_gpu_util_pct": med(setting, "gpu_util_mean_pct", first.get(setting, []))}
    if first:  # the warm pass: kept, never paired
        out["first_segments"] = {
            **{side: first[side] for side in ("bare", *BARE_VARIANTS, PEER_WORKER)
               if side in first}, "llem": first.get(setting, [])}
    out["throughput_ratio"] = out["llem_tok_per_s"] / out["bare_tok_per_s"]
    for side in (*BARE_VARIANTS, PEER_WORKER):
        if rows.get(side):
            out["segments"][side] = rows[side]
            out[f"{side.replace('-', '_')}_tok_per_s"] = med(side, "tok_per_s")
    # paired: each llem segment against the bare segment next to it in the ABBA order
    # (same round), so drift between rounds cancels
    out["spread_pct"] = {side: spread_pct(rows[side])
                         for side in ("bare", *BARE_VARIANTS, PEER_WORKER, setting)
                         if rows.get(side)}
    pairs, out["paired_ratio_ci95"], by_proc = _paired_stats(rows[setting], rows["bare"])
    out["paired_ratios"] = pairs
    out["paired_ratio_median"] = statistics.median(pairs) if pairs else None
    if by_proc:
        out["paired_ratio_by_process"] = by_proc
    if rows.get(PEER_WORKER):
        peer_pairs, out["paired_over_optimum_ci95"], by_proc = _paired_stats(
            rows[setting], rows[PEER_WORKER])
        out["llem_over_optimum"] = out["llem_tok_per_s"] / out["optimum_tok_per_s"]
        out["bare_over_optimum"] = out["bare_tok_per_s"] / out["optimum_tok_per_s"]
        out["paired_over_optimum"] = peer_pairs
        out["paired_over_optimum_median"] = statistics.median(peer_pairs)
        if by_proc:
            out["paired_over_optimum_by_process"] = by_proc
    out["energy_per_token_diff_pct"] = 100 * (out["llem_j_per_token"] / out["bare_j_per_token"]
                                              - 1)
    # the energy criterion, paired like throughput: llem's J/token over the bare loop's
    # counter J/token in the same round
    epairs, out["paired_energy_ratio_ci95"], _ = _paired_stats(rows[setting], rows["bare"],
                                                              "j_per_token")
    out["paired_energy_ratio_median"] = statistics.median(epairs) if epairs else None
    return out


def spread_pct(segments: list[dict[str, Any]]) -> float | None:
    """Coefficient of variation of a side's segment throughputs, in percent."""
    xs = [x["tok_per_s"] for x in segments if x.get("tok_per_s")]
    return 100 * statistics.stdev(xs) / statistics.mean(xs) if len(xs) > 1 else None


def median_ci95(xs: list[float], resamples: int = 4000) -> list[float] | None:
    """Percentile-bootstrap 95% interval of the median of paired ratios (seeded: the same
    segments give the same interval). A ratio criterion is shown met only when the whole
    interval clears it; an interval that straddles it means this run cannot tell."""
    if len(xs) < 3:
        return None
    rng = random.Random(0)
    return _central95(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))


def _central95(medians: Iterable[float]) -> list[float]:
    """The 2.5th and 97.5th percentiles of the bootstrap medians."""
    meds = sorted(medians)
    return [meds[int(0.025 * len(meds))], meds[int(0.975 * len(meds)) - 1]]


def median_ci95_clustered(groups: list[list[float]], resamples: int = 4000
                          ) -> list[float] | None:
    """Two-stage bootstrap 95% interval of the median when the ratios come in groups that
    may differ as wholes (one group per pair of worker processes): resample the groups,
    then the ratios within each. With one group it is :func:`median_ci95`."""
    groups = [g for g in groups if g]
    if len(groups) < 2:
        return median_ci95([x for g in groups for x in g], resamples)
    if sum(len(g) for g in groups) < 3:
        return None
    rng = random.Random(0)
    return _central95(
        statistics.median([x for g in rng.choices(groups, k=len(groups))
                           for x in rng.choices(g, k=len(g))])
        for _ in range(resamples))


def _paired(llem: list[dict[str, Any]], other: list[dict[str, Any]], key: str = "tok_per_s"
            ) -> list[float]:
    """llem / other, segment by segment of the same round (pairs missing ``key`` skipped)."""
    return [a[key] / b[key] for a, b in zip(llem, other, strict=False)
            if a.get(key) and b.get(key)]


def _paired_by_process(llem: list[dict[str, Any]], other: list[dict[str, Any]],
                       key: str = "tok_per_s") -> dict[Any, list[float]]:
    """:func:`_paired`'s ratios grouped by the worker process of the round (``--processes``;
    one group, keyed None, without it)."""
    groups: dict[Any, list[float]] = {}
    for a, b in zip(llem, other, strict=False):
        if a.get(key) and b.get(key):
            groups.setdefault(a.get("process"), []).append(a[key] / b[key])
    return groups


def _paired_stats(llem: list[dict[str, Any]], other: list[dict[str, Any]],
                  key: str = "tok_per_s"
                  ) -> tuple[list[float], list[float] | None, dict[str, float]]:
    """llem / other paired by round: the ratios in round order, their interval (grouped by
    worker process where segments carry one, so the spread between processes widens it)
    and each process's median (empty without ``--processes``)."""
    groups = _paired_by_process(llem, other, key)
    by_proc = {str(k): statistics.median(v) for k, v in sorted(groups.items()) if k is not None}
    return _paired(llem, other, key), median_ci95_clustered(list(groups.values())), by_proc


def peer_rounds(rounds: int, runs: int) -> list[int]:
    """Before which rounds the ``runs`` one-shot peer runs go: evenly spread, the middle
    for one run."""
    return [(i + 1) * rounds // (runs + 1) for i in range(runs)]


def warm_pass(bares: dict[str, Any], llem: Any, batch: int, seconds: float,
              settings: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every process of every side answers the batch once before the rounds: the first
    request of a process pays its warm-up (and llem's its full run, whose window-only
    repeats the rounds then ask for), ~10-25 s a side. Inside a round that spread the
    round's sides over ~46 s, so a core changing speed in between entered the pair.
    These answers are kept (llem's full runs give the GPU utilisation) but never paired."""
    asks = [(key, side, {}) for key, side in bares.items()]
    asks += [(setting, llem, {"setting": setting}) for setting in settings]
    return {key: side.ask_each(batch=batch, seconds=seconds, **req) for key, side, req in asks}


def alternate(bares: dict[str, Worker], llem: Worker, batch: int, rounds: int,
              seconds: float, settings: list[str],
              midway: Callable[[int], None] | None = None,
              peer_runs: int = 1, llem_req: dict[str, Any] | None = None,
              warm: bool = False) -> list[dict[str, Any]]:
    """Segments in mirrored order: the bare slot runs each bare worker, the llem slot each
    setting (rotated per round, with ``llem_req``'s extra request fields), and odd rounds
    run the whole sequence backwards (bare, peer, llem / llem, peer, bare), so every side's
    mean position in time is the same and linear drift cancels; medians of each side;
    ratios llem / bare, one row per llem
    setting. ``midway(batch)`` runs ``peer_runs`` times, spread evenly over the rounds;
    ``warm`` runs :func:`warm_pass` first."""
    rows: dict[str, list[dict[str, Any]]] = {**{k: [] for k in bares},
                                             **{s: [] for s in settings}}
    first = warm_pass(bares, llem, batch, seconds, settings) if warm else None
    at = peer_rounds(rounds, peer_runs)
    for r in range(rounds):
        for _ in range(at.count(r) if midway is not None else 0):
            midway(batch)
        # worker pools: each mirrored pair of rounds on one process of every side, so a
        # process never sees only one of the two orders
        for w in (*bares.values(), llem):
            if isinstance(w, WorkerPool):
                w.turn = r // 2
        order = ("bare", "llem") if r % 2 == 0 else ("llem", "bare")
        turn = settings[r % len(settings):] + settings[:r % len(settings)]
        bare_keys = list(bares) if r % 2 == 0 else list(reversed(bares))
        for side in order:
            for key in (bare_keys if side == "bare" else turn):
                if key in bares:
                    rows[key].append(bares[key].ask(batch=batch, seconds=seconds))
                else:
                    rows[key].append(llem.ask(batch=batch, seconds=seconds, setting=key,
                                              **(llem_req or {})))
                cpu = rows[key][-1].get("cpu") or {}
                print(json.dumps({"t_s": round(time.monotonic() - T0, 1),
                                  "batch": batch, "side": key,
                                  **{k: rows[key][-1].get(k) for k in
                                     ("tok_per_s", "j_per_token", "gpu_util_mean_pct")},
                                  "launcher_cpu_share": cpu.get("launcher_cpu_share"),
                                  "others": cpu.get("other_threads_cpu_s")}), flush=True)
    return [_summary(rows, batch, s, first) for s in settings]


def parity(args: argparse.Namespace, out: Path, mode: str, settings: list[str],
           batches: list[int], peer_rows: list[dict[str, Any]] | None = None
           ) -> list[dict[str, Any]]:
    """llem against the bare loop(s); with ``peer_rows``, optimum-benchmark runs midway
    through each batch's rounds and its rows are appended there."""
    argv = [sys.executable, str(REFS / "bare_generate.py"), "--serve", "--mode", mode]
    k = args.processes

    def sfx(i: int) -> str:  # one process per side keeps the file names of earlier runs
        return f"-{i}" if k > 1 else ""

    def bare(name: str, env: dict[str, str]) -> Any:
        return _side(lambda i: Worker(argv, env, out / f"{name}-{mode}{sfx(i)}.log",
                                      _pinned(args.bare_cpus)), k)

    llem_out = [out / "llem" / (f"p{i}" if k > 1 else "") for i in range(k)]
    bares: dict[str, Any] = {}
    sides: list[Any] = []  # every side started, closed in the end whatever happens
    midway = None
    if peer_rows is not None:
        def midway(batch: int) -> None:
            peer_rows.extend(peer(args, out, [batch]))
    rows: list[dict[str, Any]] = []
    try:
        bares["bare"] = bare("bare", _env(""))
        if args.bare_tf4 and mode == "eager":
            bares["bare-tf4"] = bare("bare-tf4", _env(args.ob_path))
        if args.bare_llem_env and mode == "eager":
            bares["bare-llemenv"] = bare("bare-llemenv", _env(None))
        if args.peer_worker and mode == "eager":
            ob_argv = [sys.executable, str(REFS / "ob_worker.py"), "--serve", "--model",
                       str(ref_model(args))]
            bares[PEER_WORKER] = _side(
                lambda i: Worker(ob_argv, _env(args.ob_path),
                                 out / f"optimum-worker{sfx(i)}.log", _pinned(peer_cpus(args))),
                k)
        sides = list(bares.values())
        llem = _side(lambda i: Worker(
            [sys.executable, str(HERE / "llem_worker.py"), "--out", str(llem_out[i])],
            _env(None), out / f"llem-{settings[0]}{sfx(i)}.log", _pinned(args.llem_cpus)), k)
        sides.append(llem)
        for w in sides:  # every worker loads at once; wait for all before the first round
            w.ready  # noqa: B018
        for b in batches:
            rows += alternate(bares, llem, b, args.rounds, args.seconds, settings, midway,
                              args.peer_runs,
                              {"window_only": True} if args.llem_window_only else None,
                              warm=args.llem_window_only)
            # a call cut by its time limit still leaves every finished batch's summary
            (out / f"{mode}-partial.json").write_text(json.dumps(rows, default=str))
        return rows
    finally:
        for w in sides or bares.values():
            w.close()


def vllm_part(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """vLLM: llem's harness and a bare LLM.generate loop, both engines resident (0.35 of the
    GPU each), alternating; then, time permitting, llem with Poisson traffic."""
    t_start = time.monotonic()
    model = subprocess.run(
        [sys.executable, "-c", "from llem_harness.backends.materialise import materialise;"
         "print(materialise('builtin:llama-1.1b'))"],
        check=True, capture_output=True, text=True, env=_env(None)).stdout.strip()
    eager = ["--enforce-eager"] if args.vllm_eager else []
    setting = "vllm-eager" if args.vllm_eager else "vllm"
    bare = Worker([sys.executable, str(REFS / "vllm_bare.py"), "--serve", "--model", model,
                   "--gpu-memory-utilization", "0.35", *eager], _env(args.vllm_bare_path),
                  out / "vllm-bare.log")
    # one vLLM engine starts at a time: each sizes its share from the memory it finds free
    res: dict[str, Any] = {"model_dir": model, "bare_ready": bare.ready, "setting": setting}
    llem = Worker([sys.executable, str(HERE / "llem_worker.py"), "--out", str(out / "llem")],
                  _env(None), out / "llem-vllm.log")
    try:
        res["parity"] = [row for b in [int(x) for x in args.vllm_batches.split(",")]
                         for row in alternate(bare, llem, b, args.rounds, args.seconds,
                                              [setting])]
    finally:
        bare.close()
    try:
        if time.monotonic() - t_start < args.vllm_poisson_after:
            res["poisson"] = llem.ask(batch=64, seconds=args.seconds, setting=setting,
                                      traffic={"mode": "poisson", "rate": 20.0, "seed": 0})
            print(json.dumps(res["poisson"]), flush=True)
        else:
            res["poisson"] = "skipped: not enough time left in this call"
    finally:
        llem.close()
    return res


def ref_model(args: argparse.Namespace) -> Path:
    """The peer's saved model of the 1.1B shape (references/make_model.py), made once."""
    model = Path(args.ref_model)
    if not (model / "config.json").exists():
        subprocess.run([sys.executable, str(REFS / "make_model.py"), "--shape", "llama-1.1b",
                        "--out", str(model)], check=True, env=_env(""))
    return model


def peer_cpus(args: argparse.Namespace) -> str | None:
    """The peer's cores: --peer-cpus, else the bare loop's."""
    return args.peer_cpus or args.bare_cpus


def peer_output(out: Path, batch: int) -> tuple[int, Path]:
    """(which one-shot run of ``batch`` this is, from 1; its JSON file): ``optimum-b8.json``,
    then ``optimum-b8-2.json``, ... (exact names: batch 1's runs never count batch 128's)."""
    n = 1
    while (f := out / (f"optimum-b{batch}.json" if n == 1 else f"optimum-b{batch}-{n}.json")
           ).exists():
        n += 1
    return n, f


def peer(args: argparse.Namespace, out: Path, batches: list[int]) -> list[dict[str, Any]]:
    """optimum-benchmark, one process per batch (``Benchmark.launch``: model load, warm-up,
    measurement), on a saved model of the same shape, pinned like the other sides."""
    model = ref_model(args)
    rows = []
    for b in batches:
        n, f = peer_output(out, b)
        cmd = [sys.executable, str(REFS / "optimum_bench.py"), "--model", str(model),
               "--batch", str(b), "--input-len", "128", "--new-tokens", "128", "--out", str(f)]
        with f.with_suffix(".log").open("w") as log:
            rc = subprocess.run(cmd, env=_env(args.ob_path), stdout=log, stderr=log,
                                preexec_fn=_pinned(peer_cpus(args))).returncode
        row = json.loads(f.read_text()) if f.exists() else {}
        if n > 1:
            row.pop("report", None)  # the first run's full report is enough
        rows.append({"batch": b, "rc": rc, "run": n, **row})
        print(json.dumps({"t_s": round(time.monotonic() - T0, 1), "side": "optimum-one-shot",
                          **{k: rows[-1].get(k) for k in ("batch", "rc", "tok_per_s")}}),
              flush=True)
    return rows


def energy(args: argparse.Namespace, out: Path, batches: list[int]) -> list[dict[str, Any]]:
    from energy_check import ExternalReader, make_cfg, run_one

    os.environ.setdefault("LLEM_BASELINE_CACHE", str(out / "baseline-cache"))
    ext = ExternalReader([0])
    try:
        rows = []
        for b in batches:
            rows.append(run_one(make_cfg(b, args.window, False), out / "energy", ext,
                                ["zeus", "nvml", "codecarbon"]))
            print(json.dumps({k: rows[-1][k] for k in ("batch", "harness_vs_external_pct",
                                                        "trace_vs_counter_pct", "tok_per_s")}),
                  flush=True)
        return rows
    finally:
        ext.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    for part in ("parity", "fast", "peer", "energy", "vllm"):
        ap.add_argument(f"--{part}", action="store_true")
    ap.add_argument("--peer-interleave", action="store_true",
                    help="run optimum-benchmark midway through each batch's parity rounds")
    ap.add_argument("--peer-runs", type=int, default=1,
                    help="with --peer-interleave: one-shot peer runs per batch, spread evenly")
    ap.add_argument("--peer-worker", action="store_true",
                    help="optimum-benchmark as a third side of every parity round")
    ap.add_argument("--llem-window-only", action="store_true",
                    help="llem's segments after a batch's first: its measured window only")
    ap.add_argument("--peer-cpus", default=None,
                    help="pin the peer (worker and one-shot runs); default: --bare-cpus")
    ap.add_argument("--bare-tf4", action="store_true",
                    help="a second bare loop on the peer's transformers (--ob-path)")
    ap.add_argument("--processes", type=int, default=1,
                    help="worker processes per side, each mirrored pair of rounds on the "
                         "next; the intervals then carry the spread between processes")
    ap.add_argument("--steady-check", type=float, default=0.0,
                    help="seconds of cpu_steadiness.py on --llem-cpus before the comparison "
                         "(skipped on an unsteady core) and after it; 0: off")
    ap.add_argument("--steady-max-cv", type=float, default=3.0,
                    help="the largest CV (%%) of the core's one-second speeds still steady")
    ap.add_argument("--launch-core", type=int, default=None,
                    help="run every side's launching thread on this one core during its "
                         "segments (references/cpu_probe.pinned_launcher); it must lie in "
                         "each side's pinned cores")
    ap.add_argument("--bare-llem-env", action="store_true",
                    help="a bare loop with llem's worker's PYTHONPATH")
    ap.add_argument("--vllm-eager", action="store_true", help="enforce_eager on both sides")
    ap.add_argument("--vllm-batches", default="1,32,128")
    ap.add_argument("--vllm-bare-path", default=None, help="PYTHONPATH for the bare vLLM loop")
    ap.add_argument("--vllm-poisson-after", type=float, default=360.0,
                    help="skip the Poisson run when the vLLM part has run longer (s)")
    ap.add_argument("--counter-gpus", default="0")
    ap.add_argument("--batches", default="1,8,32,128")
    ap.add_argument("--fast-batches", default="1")
    ap.add_argument("--llem-settings", default="default",
                    help="llem settings the parity part alternates with the bare loop, e.g. "
                         "default,default-nosampler (power trace off: a diagnostic A/B)")
    ap.add_argument("--llem-cpus", default=None, help="pin llem's worker, e.g. 2-7")
    ap.add_argument("--bare-cpus", default=None, help="pin the bare loop's worker, e.g. 8-13")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=6.0)
    ap.add_argument("--ob-path", default="/tmp/tf4")
    ap.add_argument("--ref-model", default="/tmp/llem-ref-model",
                    help="where the peer's saved model is written (kept out of --out)")
    args = ap.parse_args()
    bad = launch_core_error(args)
    if bad:
        print(f"gpu_validation: {bad}", file=sys.stderr)
        return 2
    if args.launch_core is not None:  # every worker inherits it (_env copies os.environ)
        os.environ[LAUNCH_CORE_ENV] = str(args.launch_core)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    batches = [int(x) for x in args.batches.split(",")]
    report: dict[str, Any] = {"args": vars(args), "errors": []}
    interleaved: list[dict[str, Any]] | None = [] if args.peer_interleave else None
    if interleaved is not None:
        report["peer"] = interleaved  # filled as the parity part goes
    parts = {
        "parity": lambda: parity(args, out, "eager", args.llem_settings.split(","), batches,
                                 interleaved),
        "fast": lambda: parity(args, out, "static-compile", ["fast"],
                               [int(x) for x in args.fast_batches.split(",")]),
        "peer": lambda: peer(args, out, batches),
        "energy": lambda: energy(args, out, batches),
        "vllm": lambda: vllm_part(args, out),
    }
    from external_check import CounterLog, compare

    if args.steady_check and not check_steady(args, report, "before"):
        parts = {}
    for name, fn in parts.items():
        if not getattr(args, name):
            continue
        try:
            since = time.time_ns()
            with CounterLog([int(x) for x in args.counter_gpus.split(",")]) as log:
                report[name] = fn()
            if name != "peer":  # every llem window of this part, against this process's log
                report[f"{name}_external"] = compare(log, out / "llem", since)
        except Exception:
            report["errors"].append(f"{name}: {traceback.format_exc()}")
            print(report["errors"][-1], flush=True)
        (out / "gpu_validation.json").write_text(json.dumps(report, indent=1, default=str))
    if args.steady_check and not report.get("skipped"):
        check_steady(args, report, "after")
    (out / "gpu_validation.json").write_text(json.dumps(report, indent=1, default=str))
    from validation_report import markdown

    (out / "gpu_validation.md").write_text(markdown(report))
    print(markdown(report))
    return UNSTEADY if report.get("skipped") else 0


def launch_core_error(args: argparse.Namespace) -> str | None:
    """Why ``--launch-core`` cannot be used with the sides' pins, or None."""
    if args.launch_core is None:
        return None
    for flag, cpus in (("--llem-cpus", args.llem_cpus), ("--bare-cpus", args.bare_cpus),
                       ("--peer-cpus", peer_cpus(args))):
        chosen = cpu_set(cpus)
        if chosen is None:
            return (f"--launch-core {args.launch_core} needs {flag} too (a thread can only "
                    f"be held to a core its process may use): pass {flag} with that core")
        if args.launch_core not in chosen:
            return (f"--launch-core {args.launch_core} is not in {flag} {cpus}: choose a core "
                    f"of {cpus} or widen {flag}")
    return None


def steady_cpus(args: argparse.Namespace) -> str | None:
    """The cores whose speed the comparison rides on: the launch core when every side's
    launching thread is held there, else llem's pinned cores."""
    return str(args.launch_core) if args.launch_core is not None else args.llem_cpus


def check_steady(args: argparse.Namespace, report: dict[str, Any], when: str) -> bool:
    """cpu_steadiness.py on :func:`steady_cpus` into ``report["cpu_steadiness"][when]``;
    before the comparison, an unsteady core marks the report skipped (a 1-3% ratio cannot
    be judged there, and the device time is better spent elsewhere)."""
    res = probe(steady_cpus(args), args.steady_check)
    report.setdefault("cpu_steadiness", {})[when] = res
    print(json.dumps({"cpu_steadiness": when, **res}), flush=True)
    if when == "before" and not steady(res, args.steady_max_cv):
        report["skipped"] = (f"the core's speed swung {res['cv_pct']:.1f}% (CV of one-second "
                             f"means, limit {args.steady_max_cv:g}%) before the comparison")
        return False
    return True


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
