"""Whether a process on this machine can count its own retired instructions and cycles.

Why: the 1.1B decode loop is bound by one CPU thread, and on the lent GPU VMs that
thread's core changes speed ~2x in plateaus (cpu_steadiness.py). Instructions retired per
output token would compare llem's loop with the bare loop independently of the core's
speed; this says whether the hardware counters (perf_event_open, user space only) are
there to do it. On the dev VM and the lent H100 VM they are not (ENOENT: no virtual PMU).

    python benchmarks/pmu_probe.py   # one JSON line
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
from pathlib import Path
from typing import Any

#: x86-64 syscall number of perf_event_open
PERF_EVENT_OPEN = 298
#: PERF_TYPE_HARDWARE events: config values
EVENTS = {"cycles": 0, "instructions": 1}
#: the attr flags word: exclude_kernel | exclude_hv (allowed at perf_event_paranoid 2)
USER_ONLY = (1 << 5) | (1 << 6)


def open_counter(config: int) -> tuple[int, int]:
    """A counting (not sampling) hardware counter on this thread: (fd, errno)."""
    attr = bytearray(112)
    struct.pack_into("IIQ", attr, 0, 0, len(attr), config)
    struct.pack_into("Q", attr, 40, USER_ONLY)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(PERF_EVENT_OPEN, ctypes.create_string_buffer(bytes(attr)), 0, -1, -1, 0)
    return fd, ctypes.get_errno()


def count(config: int, loops: int) -> int | str:
    """The counter's value after ``loops`` iterations of a Python loop, or why none."""
    fd, err = open_counter(config)
    if fd < 0:
        return f"errno {err} {os.strerror(err)}"
    try:
        total = 0
        for i in range(loops):
            total += i
        return struct.unpack("Q", os.read(fd, 8))[0]
    finally:
        os.close(fd)


def probe(loops: int = 3_000_000) -> dict[str, Any]:
    """``perf_event_paranoid`` and each event's count over the same loop."""
    paranoid = Path("/proc/sys/kernel/perf_event_paranoid")
    out: dict[str, Any] = {"paranoid": paranoid.read_text().strip() if paranoid.exists() else None}
    out.update({name: count(cfg, loops) for name, cfg in EVENTS.items()})
    return out


if __name__ == "__main__":
    print(json.dumps(probe()))
