"""Keep every core busy (one spinning process per core) until killed or --max-seconds pass.

CI runs the timing-sensitive tests (marker ``timing``) under this, so a test that only
passes on an idle machine fails here first, not on a user's loaded laptop. The spinners are
children in this process's group and die with it (SIGTERM/SIGINT/SIGHUP, or the time limit),
so a killed CI job leaves none behind.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import time


def spin(deadline: float) -> None:
    """Pure-Python arithmetic until the deadline: 100% of one core."""
    x = 0
    while time.monotonic() < deadline:
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_seconds
    workers = [mp.Process(target=spin, args=(deadline,), daemon=True) for _ in range(args.procs)]
    for w in workers:
        w.start()

    def stop(*_: object) -> None:
        for w in workers:
            w.terminate()
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    print(f"busy: {args.procs} spinning process(es), pid {os.getpid()}", flush=True)
    for w in workers:
        w.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
