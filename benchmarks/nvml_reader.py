"""Independent NVML energy-counter reader, run as its own process.

Reads ``nvmlDeviceGetTotalEnergyConsumption`` for the given NVML indices each time a line
arrives on stdin and answers ``<monotonic> <mJ per GPU...>``. The validation benchmark
signals it at the harness's window edges, so the two readings cover the same window but
share no process, library handle or code path.
"""

from __future__ import annotations

import sys
import time

import pynvml


def main() -> None:
    pynvml.nvmlInit()
    idx = [int(x) for x in (sys.argv[1:] or ["0"])]
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in idx]
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        vals = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles]
        print(time.monotonic(), *vals, flush=True)


if __name__ == "__main__":
    main()
