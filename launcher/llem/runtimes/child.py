"""A child process in its own session, stopped as a group on timeout or Ctrl+C.

The harness (or a container client) runs in a new session so a terminal Ctrl+C reaches
only the launcher, which then decides how the child ends; a study killed outright leaves
the harness running to completion, and resume finds its result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from llem_schema.exit_codes import ExitCode


@dataclass
class ChildExit:
    code: int
    duration_s: float
    timed_out: bool = False
    interrupted: bool = False


class SessionChild:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def run(
        self,
        cmd: list[str],
        env: dict[str, str],
        timeout_s: float | None,
        stdout: int | IO[Any] | None,
        stderr: int | IO[Any] | None,
        on_stop: Callable[[], None] | None = None,
    ) -> ChildExit:
        """Run ``cmd`` to completion; on timeout or Ctrl+C call ``on_stop`` (default:
        :meth:`stop`) and report exit code 130 with the reason."""
        stop = on_stop or self.stop
        t0 = time.monotonic()
        timed_out = interrupted = False
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop()
            code = ExitCode.INTERRUPTED
        except KeyboardInterrupt:
            interrupted = True
            stop()
            code = ExitCode.INTERRUPTED
        finally:
            self.proc = None
        return ChildExit(int(code), time.monotonic() - t0, timed_out, interrupted)

    def stop(self) -> None:
        """SIGTERM to the child's process group; SIGKILL after 10 s."""
        proc = self.proc
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
