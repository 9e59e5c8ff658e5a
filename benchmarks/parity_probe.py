"""Which part of llem's process slows eager ``generate``? A fixed-order experiment (issue 12).

Session 5 (call 1) found the independent bare loop (references/bare_generate.py) run *inside*
llem's worker process on llem's loaded model ("inproc-bare") as slow as llem itself: 0.65-0.9x
of the same loop in its own process. So the cost is not the harness's per-step code but
something the process or its model carries. This runs, per batch size and round, one fixed
sequence of segments, never rotated, so each segment's position relative to llem's first
FLOPs probe (torch.profiler, the only profiler use in the harness) is known:

    bare | inproc-own | default-noflops | inproc-own | bare | default | inproc-own | bare

``bare``: the bare loop in its own process. ``inproc-own``: the same loop on a model it builds
itself, in llem's worker process. ``default-noflops``: llem's harness without the FLOPs probe;
``default``: with it (probed once per batch shape). Each line of output is one segment.

    python benchmarks/parity_probe.py --out DIR [--batches 32,128] [--rounds 2] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gpu_validation import HERE, REFS, Worker, _env, _pinned

SEQUENCE = ["bare", "inproc-own", "default-noflops", "inproc-own", "bare", "default",
            "inproc-own", "bare"]


def run(bare: Worker, llem: Worker, batches: list[int], rounds: int, seconds: float,
        log: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with log.open("w") as f:
        for b in batches:
            for r in range(rounds):
                for pos, side in enumerate(SEQUENCE):
                    res = (bare.ask(batch=b, seconds=seconds) if side == "bare" else
                           llem.ask(batch=b, seconds=seconds, setting=side))
                    row = {"batch": b, "round": r, "pos": pos, "side": side,
                           "tok_per_s": res.get("tok_per_s"), "j_per_token": res.get("j_per_token"),
                           "flops_method": res.get("flops_method"),
                           "core": (res.get("cpu") or {}).get("launcher_core")}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    f.write(json.dumps(row) + "\n")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--cpus", default="4-5", help="both workers pinned here")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bare = Worker([sys.executable, str(REFS / "bare_generate.py"), "--serve", "--mode", "eager"],
                  _env(""), out / "bare.log", _pinned(args.cpus))
    llem = Worker([sys.executable, str(HERE / "llem_worker.py"), "--out", str(out / "llem")],
                  _env(None), out / "llem.log", _pinned(args.cpus))
    try:
        rows = run(bare, llem, [int(x) for x in args.batches.split(",")], args.rounds,
                   args.seconds, out / "segments.jsonl")
    finally:
        bare.close()
        llem.close()
    for b in sorted({r["batch"] for r in rows}):
        for side in dict.fromkeys(SEQUENCE):
            vals = [r["tok_per_s"] for r in rows if r["batch"] == b and r["side"] == side]
            print(f"batch {b} {side:16s} " + " ".join(f"{v:8.1f}" for v in vals if v))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE / "references"))
    raise SystemExit(main())
