"""Cold-start time of `llem --help` (target <= 0.3 s): median of fresh interpreter starts."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

TARGET_S = 0.3
RUNS = 15


def main() -> None:
    exe = shutil.which("llem")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "llem.cli", "--help"]
    subprocess.run(cmd, capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    base = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True)
        base.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"llem --help: median {med:.3f}s over {RUNS} runs (min {min(times):.3f}s, "
          f"bare python {statistics.median(base):.3f}s)")
    print(f"target <= {TARGET_S}s: ratio {med / TARGET_S:.2f} -> "
          f"{'PASS' if med <= TARGET_S else 'FAIL'}")


if __name__ == "__main__":
    main()
