"""How steady one pinned CPU core's speed is over seconds: a busy loop counted in 100 ms
slices, before a GPU comparison is worth running.

Why: at batch 1-128 the 1.1B shape's decode loop is bound by one CPU thread (launcher CPU
share 1.00, GPU 25-43% busy), so its throughput follows the speed of the core it runs on.
On the lent H100 VMs that speed has swung ~2x within seconds with nothing else running
(a pure Python loop on core 4: 470k counts per slice for 17 s, ~800k for 30 s, then 500k
again; benchmarks/results/h100-session13/3-cpu-noise), and steal time stayed at zero, so
the guest cannot see it any other way. Mirrored rounds cancel linear drift, not plateaus
like these: such a machine cannot judge a 1-3% ratio, and ten seconds of this probe say
so before ten minutes of device time are spent finding out.

    python benchmarks/cpu_steadiness.py [--cpus 4-5] [--seconds 10] [--max-cv 3]
    python benchmarks/cpu_steadiness.py --cores 0,4,5,12 [--seconds 30]

Prints one JSON line; exits 3 when the coefficient of variation of the one-second means
exceeds ``--max-cv`` percent. ``--cores`` runs one probe per listed core at the same time,
their slices cut on one shared clock, and adds the correlation of the cores' one-second
means: it says whether the swings are shared (a reference core could cancel them) or each
core's own (only waiting for a steady machine helps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

#: exit status when the core is too unsteady for a 1-3% comparison
UNSTEADY = 3


def cpu_set(cpus: str | None) -> set[int] | None:
    """``4-5`` / ``4`` / ``0,2-3`` to a set of core numbers (None: unpinned)."""
    if not cpus:
        return None
    chosen: set[int] = set()
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        chosen |= set(range(int(lo), int(hi or lo) + 1))
    return chosen


def pinned(cpus: str | None) -> Any:
    """A subprocess ``preexec_fn`` pinning the child to ``cpus`` (None: the scheduler's
    choice)."""
    chosen = cpu_set(cpus)
    return (lambda: os.sched_setaffinity(0, chosen)) if chosen else None


def count_slices(seconds: float, start: float | None = None, slice_s: float = 0.1) -> list[int]:
    """Busy-loop iterations in each ``slice_s`` slice for ``seconds`` (this thread). Every
    slice ends at ``start + k * slice_s`` on the monotonic clock, which all processes of
    the machine share, so probes in several processes given one ``start`` count the same
    instants (None: start now)."""
    start = time.monotonic() if start is None else start
    while time.monotonic() < start:
        pass
    counts: list[int] = []
    for k in range(1, round(seconds / slice_s) + 1):
        n, edge = 0, start + k * slice_s
        while time.monotonic() < edge:
            n += 1
        counts.append(n)
    return counts


def correlation(a: list[float], b: list[float]) -> float | None:
    """Pearson's r of two equally long series (None when either is constant)."""
    try:
        return statistics.correlation(a, b)
    except statistics.StatisticsError:
        return None


def probe_cores(cores: str, seconds: float) -> dict[str, Any]:
    """One probe process per core of ``cores``, all counting the same slices of the shared
    monotonic clock; each core summarised, plus the correlation of every two cores'
    one-second means."""
    start = time.monotonic() + 1.0
    procs = {c: subprocess.Popen(
        [sys.executable, __file__, "--count", str(seconds), "--start", repr(start)],
        stdout=subprocess.PIPE, text=True, preexec_fn=pinned(str(c)))
        for c in sorted(cpu_set(cores) or ())}
    per = {c: summarise(json.loads(p.communicate()[0])) for c, p in procs.items()}
    pairs = {f"{a}-{b}": correlation(per[a]["per_second"], per[b]["per_second"])
             for a in per for b in per if a < b}
    known = [r for r in pairs.values() if r is not None]
    return {"cores": {str(c): v for c, v in per.items()}, "seconds": seconds,
            "correlation_of_seconds": pairs,
            "median_correlation": statistics.median(known) if known else None}


def summarise(counts: list[int], per: int = 10) -> dict[str, Any]:
    """CV of the one-second means (``per`` slices each; a decode segment lasts ~1-4 s),
    the slices' own CV, and the slowest second over the fastest."""
    means = [statistics.mean(counts[i:i + per]) for i in range(0, len(counts) - per + 1, per)]
    out: dict[str, Any] = {"slices": len(counts), "per_second": [round(m) for m in means]}
    if len(counts) > 1:
        out["slice_cv_pct"] = 100 * statistics.stdev(counts) / statistics.mean(counts)
    if len(means) > 1:
        out["cv_pct"] = 100 * statistics.stdev(means) / statistics.mean(means)
        out["slowest_over_fastest"] = min(means) / max(means)
    return out


def probe(cpus: str | None, seconds: float) -> dict[str, Any]:
    """The probe in its own process pinned to ``cpus`` (so the caller's affinity is left
    alone), summarised."""
    res = subprocess.run([sys.executable, __file__, "--count", str(seconds)],
                         capture_output=True, text=True, check=True, preexec_fn=pinned(cpus))
    return {"cpus": cpus, "seconds": seconds, **summarise(json.loads(res.stdout))}


def steady(result: dict[str, Any], max_cv: float) -> bool:
    """Whether the core held its speed within ``max_cv`` percent (unknown counts as steady:
    a probe too short to have two seconds judges nothing)."""
    return result.get("cv_pct", 0.0) <= max_cv


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", default=None, help="cores to pin the probe to, e.g. 4-5")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--max-cv", type=float, default=3.0,
                    help="the largest CV (%%) of one-second means still called steady")
    ap.add_argument("--cores", default=None,
                    help="probe each of these cores at once (e.g. 0,4-5,12) and correlate them")
    ap.add_argument("--count", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--start", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.count is not None:
        print(json.dumps(count_slices(args.count, args.start)))
        return 0
    if args.cores:
        res = probe_cores(args.cores, args.seconds)
        print(json.dumps(res))
        return 0 if all(steady(v, args.max_cv) for v in res["cores"].values()) else UNSTEADY
    res = probe(args.cpus, args.seconds)
    print(json.dumps(res))
    return 0 if steady(res, args.max_cv) else UNSTEADY


if __name__ == "__main__":
    raise SystemExit(main())
