"""A child process in its own session, stopped as a group on timeout or Ctrl+C.

The harness (or a container client) runs in a new session so a terminal Ctrl+C reaches
only the launcher, which then decides how the child ends; a study killed outright leaves
the harness running to completion, and resume finds its result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
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
        self._lock = threading.Lock()
        #: set by :meth:`cancel` (Ctrl+C / SIGTERM seen by another thread): the child running
        #: now, or the next one if none is, ends as interrupted; the run reporting it clears it
        self._cancelled = threading.Event()
        #: set while no :meth:`run` is in progress (cancel() from another thread waits on it)
        self._idle = threading.Event()
        self._idle.set()
        self._running_in: int | None = None

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
        with self._lock:
            if self._cancelled.is_set():  # interrupted before it began: nothing starts
                self._cancelled.clear()
                return ChildExit(int(ExitCode.INTERRUPTED), 0.0, interrupted=True)
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=stdout, stderr=stderr, start_new_session=True
            )
            self._running_in = threading.get_ident()
            self._idle.clear()
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
            with self._lock:
                self.proc = None
                self._running_in = None
                self._idle.set()
        if not timed_out and self._cancelled.is_set() and code != 0:
            # stopped by cancel() from another thread: an interruption, not a failure
            interrupted, code = True, ExitCode.INTERRUPTED
        if interrupted:
            self._cancelled.clear()
        return ChildExit(int(code), time.monotonic() - t0, timed_out, interrupted)

    def cancel(self, on_stop: Callable[[], None] | None = None) -> None:
        """Ctrl+C / SIGTERM from any thread: stop the child (``on_stop``, default
        :meth:`stop`); one about to start does not start."""
        with self._lock:
            self._cancelled.set()
            elsewhere = self._running_in not in (None, threading.get_ident())
        (on_stop or self.stop)()
        if elsewhere:  # the launcher may exit on this interrupt: let the run return first
            self._idle.wait(timeout=60)

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
