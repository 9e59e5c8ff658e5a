"""Find harness processes left behind by a launcher that was killed.

Runtimes start the harness in its own session so a terminal's Ctrl+C reaches the launcher
first; the flip side is that a SIGKILLed launcher leaves its harness running. Before a
resumed study re-runs a run marked ``running``, it waits for such an orphan to finish (its
result then counts, nothing is repeated) instead of starting a second harness on the same
run directory. Linux only (``/proc``); elsewhere nothing is found.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def harness_pids(run_dir: Path) -> list[int]:
    """PIDs of live ``llem_harness`` processes whose command line names ``run_dir``."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    tail = "/".join(run_dir.resolve().parts[-3:])
    me = os.getpid()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue  # a zombie has finished
        args = [a.decode(errors="replace") for a in argv if a]
        if any("llem_harness" in a for a in args) and any(a.endswith(tail) for a in args):
            found.append(int(entry.name))
    return found


def wait_for_orphans(run_dir: Path, timeout_s: float | None, poll_s: float = 0.2) -> bool:
    """Wait until no harness works on ``run_dir``; after ``timeout_s`` terminate it.

    Returns True when an orphan was found (the caller then re-reads the run's state).
    """
    pids = harness_pids(run_dir)
    if not pids:
        return False
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while pids:
        if deadline is not None and time.monotonic() > deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            time.sleep(2)
            for pid in harness_pids(run_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = None
        time.sleep(poll_s)
        pids = harness_pids(run_dir)
    return True
