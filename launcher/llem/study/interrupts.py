"""Interruption is not failure: Ctrl+C, SIGTERM (kill, a stopping CI job, systemd) and
scancel stop the running harness and leave the run ``interrupted``, with no attempt
counted, so ``--resume`` / ``llem study resume`` run it again however often it happened."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from llem.study import manifest as mf


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a stopping CI job, systemd) is treated like Ctrl+C: the running
    harness or container is stopped, the run marked interrupted, and the exit is 130 with a
    message, instead of a silent 143 that leaves the harness running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def mark_interrupted(entry: mf.RunEntry) -> None:
    """Ctrl+C, SIGTERM or scancel stopped the run: not an attempt, nothing lost; resume
    (``--resume``, ``llem study resume``) runs it again however often that happened."""
    entry.state = "interrupted"
    entry.attempts = max(0, entry.attempts - 1)
    entry.message = "interrupted (Ctrl+C / SIGTERM); resume runs it again"
