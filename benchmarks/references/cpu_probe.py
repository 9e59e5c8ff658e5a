"""Where a process's CPU time went during a timed segment (Linux /proc and cgroup v2 only).

Eager ``generate`` on a 1B model is bound by the host thread that launches kernels, so a
segment that runs at half speed is explained by that thread: it got less CPU (other
threads or processes on its core, cgroup throttling), or the CPU it got was slower (a
different core, frequency). This probe records, per segment: each thread's CPU seconds
(by name), the launching thread's share of wall time, its voluntary/involuntary context
switches and the core it ended on, the cgroup's throttled time and the machine's busy
cores. It imports nothing from llem, so the reference loops can use it too.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: the environment variable naming the one core every side's launching thread runs on
LAUNCH_CORE_ENV = "BENCH_LAUNCH_CORE"

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _thread_stat(tid: str) -> tuple[str, float, int] | None:
    """(name, cpu seconds, last core) of one thread of this process."""
    raw = _read(f"/proc/self/task/{tid}/stat")
    if not raw:
        return None
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is stat field 3 (state): utime=14, stime=15, processor=39
    return name, (int(fields[11]) + int(fields[12])) / _TICK, int(fields[36])


def _switches(tid: str) -> tuple[int, int]:
    vol = invol = 0
    for line in _read(f"/proc/self/task/{tid}/status").splitlines():
        if line.startswith("voluntary_ctxt_switches"):
            vol = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches"):
            invol = int(line.split()[1])
    return vol, invol


def _cgroup() -> dict[str, int]:
    """cgroup v2 cpu.stat of this process's cgroup (throttling under a CPU quota)."""
    rel = next((ln.split("::", 1)[1] for ln in _read("/proc/self/cgroup").splitlines()
                if ln.startswith("0::")), "/")
    stat = _read(f"/sys/fs/cgroup{rel.rstrip('/')}/cpu.stat") or _read("/sys/fs/cgroup/cpu.stat")
    return {k: int(v) for k, v in (ln.split() for ln in stat.splitlines() if ln.strip())}


def _machine() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs."""
    parts = _read("/proc/stat").splitlines()[0].split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return float(sum(vals) - idle), float(sum(vals))


_ALLOC_KEYS = ("num_device_alloc", "num_device_free", "num_alloc_retries",
               "num_sync_all_streams")


def _allocator() -> dict[str, int]:
    """torch's CUDA caching-allocator counters when this process uses CUDA: a cudaMalloc or
    cudaFree inside a decode window synchronises the device, which a warm loop never does."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return {}
    stats = torch.cuda.memory_stats()
    return {k: int(stats.get(k, 0)) for k in _ALLOC_KEYS}


def _core_mhz(core: int) -> float | None:
    khz = _read(f"/sys/devices/system/cpu/cpu{core}/cpufreq/scaling_cur_freq").strip()
    return int(khz) / 1000 if khz else None


@contextmanager
def pinned_launcher() -> Iterator[int | None]:
    """Pin the calling thread -- the one that launches the kernels -- to the core named by
    ``$BENCH_LAUNCH_CORE`` for the block, then give it its affinity back; unset: nothing.

    On Linux ``sched_setaffinity(0)`` moves the calling thread only, so the process's
    other threads and processes it started before the block (llem's power sampler) keep
    the worker's cores. The lent VM's cores change speed each on its own (session 14), and
    a side whose launching thread sat on the other core of a 2-core pin was not paired with
    the same core's speed (sessions 10-18 ran sides' launchers on different cores in about
    half the rounds); with one launch core for every side, a round's sides share it.
    """
    raw = os.environ.get(LAUNCH_CORE_ENV, "").strip()
    if not raw:
        yield None
        return
    core = int(raw)
    kept = os.sched_getaffinity(0)
    if core not in kept:
        raise ValueError(f"{LAUNCH_CORE_ENV}={core} is not among this worker's cores "
                         f"{sorted(kept)}: pick one of them")
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, kept)


class CpuProbe:
    """``with CpuProbe() as p: ...`` then ``p.result``; the launching thread is the one that
    entered the probe."""

    def __init__(self) -> None:
        self.result: dict[str, Any] = {}

    def _snapshot(self) -> dict[str, Any]:
        threads = {}
        for tid in os.listdir("/proc/self/task"):
            st = _thread_stat(tid)
            if st:
                threads[tid] = st
        return {"t": time.perf_counter(), "threads": threads, "cg": _cgroup(),
                "machine": _machine(), "sw": _switches(self._tid), "alloc": _allocator()}

    def __enter__(self) -> CpuProbe:
        self._tid = str(threading.get_native_id())
        self._a = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        b = self._snapshot()
        wall = b["t"] - self._a["t"]
        cpu: dict[str, float] = {}
        names = {str(t.native_id): t.name for t in threading.enumerate()}
        for tid, (name, sec, _) in b["threads"].items():
            name = names.get(tid, name)
            before = self._a["threads"].get(tid, (name, 0.0, 0))[1]
            key = "launcher" if tid == self._tid else name
            cpu[key] = cpu.get(key, 0.0) + sec - before
        busy = (b["machine"][0] - self._a["machine"][0])
        total = (b["machine"][1] - self._a["machine"][1]) or 1.0
        core = b["threads"].get(self._tid, ("", 0.0, -1))[2]
        self.result = {
            "wall_s": round(wall, 3),
            "launcher_cpu_share": round(cpu.get("launcher", 0.0) / wall, 3) if wall else None,
            "other_threads_cpu_s": {k: round(v, 2) for k, v in sorted(
                cpu.items(), key=lambda kv: -kv[1]) if k != "launcher" and v > 0.01},
            "launcher_core": core, "launcher_core_mhz": _core_mhz(core),
            "voluntary_switches": b["sw"][0] - self._a["sw"][0],
            "involuntary_switches": b["sw"][1] - self._a["sw"][1],
            "cgroup_throttled_ms": (b["cg"].get("throttled_usec", 0)
                                    - self._a["cg"].get("throttled_usec", 0)) / 1000,
            "machine_busy_cores": round(busy / total * (os.cpu_count() or 1), 2),
            "affinity": len(os.sched_getaffinity(0)),
            "cuda_allocator": {k: v - self._a["alloc"].get(k, 0) for k, v in b["alloc"].items()},
        }
