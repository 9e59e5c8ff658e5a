"""One llem per study at a time (a kernel lock that dies with its holder) and the cooldown
between runs (time, then GPU temperature)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

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


#: the longest ``study.cooldown_max_temp_c`` waits for a GPU to cool before running anyway
COOLDOWN_CAP_S = 600.0
COOLDOWN_POLL_S = 2.0


def cooldown(seconds: float, max_temp_c: float | None, gpus: list[int | str], *,
             cap_s: float = COOLDOWN_CAP_S, poll_s: float = COOLDOWN_POLL_S) -> str | None:
    """Sleep, then (optionally) wait until the slot's GPUs are at or below ``max_temp_c``.

    Each GPU is read as the slot names it: an index (NVML's order, as ``nvidia-smi``), a
    ``GPU-...`` UUID, or a ``MIG-...`` UUID (its parent GPU's temperature; a MIG instance
    has no sensor of its own); a slot naming none reads GPU 0. Returns None when the wait
    did what was asked, else one line saying why it gave up (NVML unreadable, or still
    too hot after ``cap_s``) for the next run's state and log line: the run goes ahead
    either way, but never silently warmer than asked."""
    if seconds > 0:
        time.sleep(seconds)
    if max_temp_c is None:
        return None
    names = [str(g) for g in gpus] or ["0"]
    try:
        import pynvml  # only on GPU hosts; imported lazily (the host CLI must not load it)
    except ImportError:
        return (f"cooldown gave up: no NVML (pynvml not installed) to read the GPU "
                f"temperature; ran without waiting for <= {max_temp_c:g} C")
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return (f"cooldown gave up: NVML unavailable ({_nvml_text(exc)}); ran without "
                f"waiting for <= {max_temp_c:g} C")
    try:
        return _wait_below(pynvml, names, max_temp_c, cap_s, poll_s)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _nvml_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _gpu_handle(pynvml: Any, name: str) -> Any:
    """The NVML handle whose temperature stands for GPU ``name`` of a slot."""
    if name.isdigit():
        return pynvml.nvmlDeviceGetHandleByIndex(int(name))
    handle = pynvml.nvmlDeviceGetHandleByUUID(name)
    if name.startswith("MIG-"):
        handle = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
    return handle


def _wait_below(pynvml: Any, names: list[str], max_temp_c: float, cap_s: float,
                poll_s: float) -> str | None:
    name = names[0]
    try:
        handles = []
        for name in names:
            handles.append(_gpu_handle(pynvml, name))
        deadline = time.monotonic() + cap_s
        while True:
            temps = {}
            for name, h in zip(names, handles, strict=True):
                temps[name] = float(pynvml.nvmlDeviceGetTemperature(
                    h, pynvml.NVML_TEMPERATURE_GPU))
            if max(temps.values()) <= max_temp_c:
                return None
            if time.monotonic() >= deadline:
                hot = ", ".join(f"GPU {g} {t:g} C" for g, t in temps.items() if t > max_temp_c)
                return (f"cooldown gave up: {hot} still above {max_temp_c:g} C after "
                        f"{cap_s:g} s (the cap); ran anyway")
            time.sleep(poll_s)
    except Exception as exc:
        return (f"cooldown gave up: cannot read GPU {name}'s temperature (NVML: "
                f"{_nvml_text(exc)}); ran without waiting for <= {max_temp_c:g} C")
