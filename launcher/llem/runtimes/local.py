"""Local runtime: the harness as a subprocess of the current Python environment.

For GPU machines without Docker, development, and the embedded quickstart. Same run
directory in, same files out as the container runtimes.
"""

from __future__ import annotations

import os
import subprocess
import sys

from llem.runtimes.base import RunOutcome, RunRequest, Runtime
from llem.runtimes.child import SessionChild
from llem_schema.runspec import LOG_FILE


def gpu_env(gpus: list[int | str]) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for the experiment's GPUs (indices, UUIDs or MIG ids)."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus)} if gpus else {}


class LocalRuntime(Runtime):
    name = "local"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._child = SessionChild()

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
        res = self._child.run(
            cmd,
            env,
            request.timeout_s,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if request.quiet else None,
        )
        return RunOutcome(
            exit_code=res.code,
            duration_s=res.duration_s,
            log_path=request.run_dir / LOG_FILE,
            runtime=self.name,
            timed_out=res.timed_out,
            interrupted=res.interrupted,
        )

    def cleanup(self) -> None:
        self._child.cancel()
