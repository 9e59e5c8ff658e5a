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
  its result, which counts as usual; its run is then ``done`` on resume, and
  :func:`stop_study_orphans` (every container of the study, whatever its run's state)
  removes the container, its token directory, and gives its files back.

The runtimes check again before every container they start (:func:`llem.runtimes.docker.
stop_run_containers`), so a run directory never has two containers, even when the engine
could not be asked here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from llem.runtimes.containers import read_spec, sweep_stale_token_dirs, take_back
from llem_schema.runspec import EXPERIMENT_FILE


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
    if engine not in ("docker", "podman"):
        return 0
    found = 0
    try:
        if engine == "docker":
            found = _stop_docker(run_dir)
        else:
            from llem.runtimes import podman

            found = podman.stop_run_containers(run_dir)
    except (ImageError, RuntimeUnavailable, ImportError, OSError, subprocess.TimeoutExpired):
        return 0
    finally:
        # a launcher killed before its container existed (or after it was gone) leaves no
        # container to find its token directory by, and (as root) a run directory lent to
        # the container's uid
        with contextlib.suppress(OSError):
            sweep_stale_token_dirs()
            take_back(run_dir.resolve())
    return found


def stop_study_orphans(study_dir: Path) -> int:
    """Stop and remove every container of the study, whatever its run's state says: the
    runs marked ``running`` are settled by :func:`wait_for_orphans`, but a killed launcher's
    container that finished on its own leaves a valid result, its run counts as done and is
    never run again, and nothing else would remove that container (nor its token directory,
    nor give its files back). Call it on resume, before any run starts. Returns how many
    containers there were; an engine that cannot be asked finds none."""
    from llem.images.base import ImageError
    from llem.runtimes.base import RuntimeUnavailable

    engines = set()
    for spec_file in Path(study_dir).glob(f"*/*/{EXPERIMENT_FILE}"):
        spec = read_spec(spec_file.parent)
        if spec is not None:
            engines.add(spec.runtime)
    found = 0
    for engine in sorted(engines & {"docker", "podman"}):
        try:
            if engine == "docker":
                from llem.images.registry import docker_client
                from llem.runtimes import docker

                client = docker_client(timeout=120)
                try:
                    found += docker.stop_study_containers(client, study_dir)
                finally:
                    client.close()
            else:
                from llem.runtimes import podman

                found += podman.stop_study_containers(study_dir)
        except (ImageError, RuntimeUnavailable, ImportError, OSError,
                subprocess.TimeoutExpired):
            continue
    if engines & {"docker", "podman"}:
        with contextlib.suppress(OSError):
            sweep_stale_token_dirs()
    return found


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
