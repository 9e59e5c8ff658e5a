"""Check llem's energy windows against an NVML counter read by a separate process.

Runs any command (an ``llem run`` of a study, typically) while this process, which shares
no code with llem, reads each GPU's total-energy counter every 50 ms together with the
Unix time. Afterwards it reads every ``result.json`` the command wrote, takes each
recorded window (``windows[]``: name, Unix-ns edges, llem's joules) and reports the
counter's joules over exactly that span (linear interpolation between the two readings
around each edge) next to llem's. The same recipe works with any external meter that
logs timestamps: a wall-power meter, a PDU, a BMC.

    python benchmarks/external_check.py --results RESULTS_DIR [--gpus 0] [--out FILE] \\
        -- llem run study.yaml --runtime local --results-dir RESULTS_DIR
"""

from __future__ import annotations

import argparse
import bisect
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class CounterLog:
    """(unix_ns, [mJ per GPU]) every ``interval`` seconds in a background thread."""

    def __init__(self, gpus: list[int], interval: float = 0.05) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nv = pynvml
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in gpus]
        self.interval = interval
        self.t: list[int] = []
        self.mj: list[list[int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _read(self) -> None:
        vals = [self._nv.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        self.t.append(time.time_ns())
        self.mj.append(vals)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._read()
            self._stop.wait(self.interval)

    def __enter__(self) -> CounterLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()

    def joules_at(self, unix_ns: int) -> float | None:
        """Counter (J, summed over GPUs) at ``unix_ns``, interpolated between readings."""
        i = bisect.bisect_left(self.t, unix_ns)
        if i == 0 or i >= len(self.t):
            return None
        t0, t1 = self.t[i - 1], self.t[i]
        e0, e1 = sum(self.mj[i - 1]), sum(self.mj[i])
        frac = (unix_ns - t0) / (t1 - t0) if t1 > t0 else 0.0
        return (e0 + (e1 - e0) * frac) / 1000.0


def compare(log: CounterLog, results: Path, since_ns: int) -> list[dict[str, Any]]:
    rows = []
    for f in sorted(results.rglob("result.json")):
        res = json.loads(f.read_text())
        for w in res.get("windows", []):
            if w["start_unix_ns"] < since_ns or w.get("energy_j") is None:
                continue
            a, b = log.joules_at(w["start_unix_ns"]), log.joules_at(w["end_unix_ns"])
            ext = b - a if a is not None and b is not None else None
            rows.append({
                "result": str(f.relative_to(results)), "window": w["name"],
                "duration_s": w["duration_s"], "llem_j": w["energy_j"], "external_j": ext,
                "diff_pct": 100 * (w["energy_j"] - ext) / ext if ext else None,
            })
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="directory the command writes results to")
    ap.add_argument("--gpus", default="0", help="NVML indices of the GPUs llem measures")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--out", help="write the rows as JSON here")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("give the command to run after --")
    since = time.time_ns()
    with CounterLog([int(x) for x in args.gpus.split(",")], args.interval) as log:
        rc = subprocess.run(cmd).returncode
    rows = compare(log, Path(args.results), since)
    worst = max((abs(r["diff_pct"]) for r in rows if r["diff_pct"] is not None), default=None)
    summary = {"command_rc": rc, "windows": len(rows), "max_abs_diff_pct": worst,
               "counter_readings": len(log.t), "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))
    for r in rows:
        print(f"{r['result']:60s} {r['window']:9s} {r['duration_s']:7.2f}s "
              f"llem {r['llem_j']:10.1f} J  external {r['external_j'] or float('nan'):10.1f} J  "
              f"diff {r['diff_pct'] if r['diff_pct'] is not None else float('nan'):+.3f}%")
    print(f"{len(rows)} windows, max |diff| {worst}%, command exit {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
