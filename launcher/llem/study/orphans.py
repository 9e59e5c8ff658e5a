"""Find what a launcher that was killed left working on a run directory.

Runtimes start the harness in its own session so a terminal's Ctrl+C reaches the launcher
first; the flip side is that a SIGKILLed launcher leaves its harness running. Before a
resumed study re-runs a run marked ``running``, it settles such orphans instead of starting
a second harness on the same run directory:

* a local harness process (found in ``/proc``, Linux only) is waited for: its result then
  counts and nothing is repeated;
* a container (docker or podman, found by its run-directory label) is stopped and removed.
  The launcher that watched it is gone, and with it the container's timeout, its log copy,
  the hand-back of the files it wrote and the removal of its token file; it may also hold
  GPUs the resumed study gives to another run. A container that already finished leaves
  its result, which counts as usual.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from llem.runtimes.containers import read_spec


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


def stop_orphan_containers(run_dir: Path) -> int:
    """Stop and remove the containers labelled with ``run_dir``, asking the engine that the
    run's experiment.json names; returns how many there were.

    An engine that cannot be asked finds nothing here; the runtime asks again, and fails
    with the reason, before it starts the next container on this run directory.
    """
    from llem.images.base import ImageError
    from llem.runtimes.base import RuntimeUnavailable

    spec = read_spec(run_dir)
    engine = spec.runtime if spec is not None else None
    try:
        if engine == "docker":
            return _stop_docker(run_dir)
        if engine == "podman":
            from llem.runtimes import podman

            return podman.stop_run_containers(run_dir)
    except (ImageError, RuntimeUnavailable, ImportError, OSError, subprocess.TimeoutExpired):
        return 0
    return 0


def _stop_docker(run_dir: Path) -> int:
    from llem.images.registry import docker_client
    from llem.runtimes import docker

    client = docker_client(timeout=120)
    try:
        return docker.stop_run_containers(client, run_dir)
    finally:
        client.close()


def wait_for_orphans(run_dir: Path, timeout_s: float | None, poll_s: float = 0.2) -> bool:
    """Stop the run's orphaned containers, then wait until no local harness works on
    ``run_dir``; after ``timeout_s`` terminate it.

    Returns True when an orphan was found (the caller then re-reads the run's state).
    """
    stopped = stop_orphan_containers(run_dir) > 0
    pids = harness_pids(run_dir)
    if not pids:
        return stopped
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
