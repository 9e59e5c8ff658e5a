"""One llem per study at a time (a kernel lock that dies with its holder) and the cooldown
between runs (time, then GPU temperature)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from llem_schema.errors import ConfigError

LOCK_FILE = ".llem.lock"


class StudyLock:
    """Exclusive per-study lock; the kernel releases it when the holder dies (even SIGKILL)."""

    def __init__(self, study_dir: Path) -> None:
        self.path = study_dir / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> StudyLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"{self.path.parent}: another llem (pid {holder}) is running this study; "
                "wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def cooldown(seconds: float, max_temp_c: float | None, gpus: list[int | str]) -> None:
    """Sleep, then (optionally) wait until the slot's GPUs are below ``max_temp_c``."""
    if seconds > 0:
        time.sleep(seconds)
    if max_temp_c is None:
        return
    try:
        import pynvml  # only on GPU hosts; imported lazily (the host CLI must not load it)

        pynvml.nvmlInit()
        idx = [int(g) for g in gpus if str(g).isdigit()] or [0]
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in idx]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            temps = [pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
                     for h in handles]
            if max(temps) <= max_temp_c:
                return
            time.sleep(2)
    except Exception:
        return
