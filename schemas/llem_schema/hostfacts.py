"""Host facts that the launcher (``study/hostenv.py``) and the harness (``environment.py``)
both record in a result's environment: one reading, so the two sides can be compared field
by field (``llem rerun`` prints what differs). Standard library only, like the contract."""

from __future__ import annotations

import platform


def cpu_model() -> str | None:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def mem_total() -> int | None:
    """Physical memory in bytes (MemTotal of /proc/meminfo); None where unreadable."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None
