"""Local runtime: the harness as a subprocess of the current Python environment.

For GPU machines without Docker, development, and the embedded quickstart. Same run
directory in, same files out as the container runtimes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from llem.runtimes.base import RunOutcome, RunRequest, Runtime
from llem_schema.exit_codes import ExitCode
from llem_schema.runspec import LOG_FILE


def gpu_env(gpus: list[int | str]) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for the experiment's GPUs (indices, UUIDs or MIG ids)."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus)} if gpus else {}


class LocalRuntime(Runtime):
    name = "local"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        import importlib.util

        if importlib.util.find_spec("llem_harness") is None:
            return False, (
                "llem_harness is not importable here; pip install 'llenergymeasure[pytorch]'"
            )
        return True, ""

    def run(self, request: RunRequest) -> RunOutcome:
        env = dict(os.environ)
        env.update(request.env)
        env.update(gpu_env(request.gpus))
        env["LLEM_RUNTIME"] = "local"
        env.setdefault("PYTHONUNBUFFERED", "1")
        cmd = [self.python, "-m", "llem_harness", str(request.run_dir)]
        t0 = time.monotonic()
        timed_out = interrupted = False
        # own process group: a terminal Ctrl+C reaches us, and we decide how the child ends
        self._proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if request.quiet else None,
            start_new_session=True,
        )
        try:
            code = self._proc.wait(timeout=request.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.cleanup()
            code = ExitCode.INTERRUPTED
        except KeyboardInterrupt:
            interrupted = True
            self.cleanup()
            code = ExitCode.INTERRUPTED
        finally:
            self._proc = None
        return RunOutcome(
            exit_code=int(code),
            duration_s=time.monotonic() - t0,
            log_path=request.run_dir / LOG_FILE,
            runtime=self.name,
            timed_out=timed_out,
            interrupted=interrupted,
        )

    def cleanup(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
