"""The power sampler's own process: reads NVML on its schedule and hands every sample to
the harness when told to stop.

Why a process and not a thread: each NVML call releases Python's GIL and must take it back
afterwards, and the harness's launching thread holds it for nearly all of an eager decode
step, so a sampler thread forces a GIL hand-off on that thread at every read. Here the
reads share no interpreter with the measured code, and nothing crosses between the two
until the stop. Measured on the H100 (``benchmarks/sampler_cost.py``, session 11), the
process and the thread cost a batch-8 ``generate`` about the same (0.9% and 0.7%): the
reads themselves cost, wherever they run, which is why the slow fields are read only about
once a second (:mod:`llem_harness.nvml_reader`).

Protocol (line-based, stdin/stdout): the process prints ``{"ready": ...}`` once NVML is
open; a line on stdin (or its end) stops it; it then prints one JSON line, the list of
samples as rows of :data:`FIELDS`, and exits. Samples carry no phase: the harness labels
them by time from its own phase marks (``time.monotonic`` is one clock for the machine).

    python -m llem_harness.sampler_proc --gpus 0,1 --interval 0.1 [--jitter 0.5 --seed 0]
        [--full-every 10]
"""

from __future__ import annotations

import argparse
import json
import random
import select
import sys
import time
from collections.abc import Callable
from dataclasses import astuple, fields

from llem_harness.nvml_reader import NvmlReader, Sample

#: the wire order of a sample (Sample's fields; ``phase`` is sent empty)
FIELDS = [f.name for f in fields(Sample)]


def _stopped(timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the stop line (or stdin's end)."""
    ready, _, _ = select.select([sys.stdin], [], [], max(0.0, timeout_s))
    if not ready:
        return False
    sys.stdin.readline()
    return True


def sample_every(sample: Callable[[float], None], stopped: Callable[[float], bool],
                 interval_s: float, jitter: float, rng: random.Random) -> None:
    """The sampler's schedule, for the process and the in-process thread alike: a sample
    now, then one every ``interval_s * U(1 - jitter, 1 + jitter)`` until ``stopped(wait_s)``
    (which waits up to ``wait_s`` for the stop) says so."""
    next_t = time.monotonic()
    while True:
        sample(time.monotonic())
        next_t += interval_s * rng.uniform(1 - jitter, 1 + jitter)
        if stopped(next_t - time.monotonic()):
            return


def run(reader: NvmlReader, interval_s: float, jitter: float, seed: int) -> list[Sample]:
    samples: list[Sample] = []

    def sample(t: float) -> None:
        samples.extend(reader.read(t, ""))

    sample_every(sample, _stopped, interval_s, jitter, random.Random(seed))
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", required=True, help="CUDA indices, comma-separated")
    ap.add_argument("--interval", type=float, required=True)
    ap.add_argument("--jitter", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--power-method", choices=["instant", "average"], default=None)
    ap.add_argument("--full-every", type=int, default=1,
                    help="read the slow fields too at every N-th sample")
    args = ap.parse_args(argv)
    gpus = [int(g) for g in args.gpus.split(",")]
    try:
        reader = NvmlReader.open(gpus, args.power_method, args.full_every)
    except Exception as exc:
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({"ready": True, "power_method": reader.power_method}), flush=True)
    samples = run(reader, args.interval, args.jitter, args.seed)
    print(json.dumps([astuple(s) for s in samples]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
