"""Energy source interface: one small protocol every measurement backend implements.

A source measures *windows*: ``begin()`` opens one, ``end()`` closes it and returns the
joules consumed in between, per device. Duration is owned by the same
:class:`EnergyWindow` object so energy and time can never come from different windows
(a pitfall of earlier tools).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class EnergySourceUnavailable(RuntimeError):
    """The requested source cannot run here; the message says why."""


@dataclass
class WindowReading:
    """Result of one closed window."""

    joules: float
    duration_s: float
    per_device_j: list[float] = field(default_factory=list)
    device_indices: list[int] = field(default_factory=list)
    start_monotonic: float = 0.0
    end_monotonic: float = 0.0
    #: wall-clock edges (time.time_ns), read next to the monotonic ones
    start_unix_ns: int = 0
    end_unix_ns: int = 0

    @property
    def mean_power_w(self) -> float:
        return self.joules / self.duration_s if self.duration_s > 0 else float("nan")


class EnergySource(ABC):
    """One way of reading energy (Zeus, NVML counter, CodeCarbon, RAPL)."""

    #: short id recorded in the result (``energy.method``)
    name: str = "abstract"

    @classmethod
    @abstractmethod
    def available(cls, device_indices: list[int]) -> tuple[bool, str]:
        """(usable here?, reason when not). Must be cheap and never raise."""

    @abstractmethod
    def begin(self) -> None:
        """Open a window."""

    @abstractmethod
    def end(self) -> list[float]:
        """Close the window; joules per device since ``begin()``."""

    def version(self) -> str | None:
        """Version of the library behind the source, recorded in the result."""
        return None

    def close(self) -> None:
        """Release handles."""


class EnergyWindow:
    """Context manager measuring energy and wall time over exactly the same interval."""

    def __init__(self, source: EnergySource | None, device_indices: list[int]) -> None:
        self.source = source
        self.device_indices = device_indices
        self.reading: WindowReading | None = None
        self._t0 = 0.0
        self._u0 = 0

    def __enter__(self) -> EnergyWindow:
        if self.source is not None:
            self.source.begin()
        self._t0 = time.monotonic()
        self._u0 = time.time_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        t1 = time.monotonic()
        u1 = time.time_ns()
        per_dev = self.source.end() if self.source is not None else []
        self.reading = WindowReading(
            joules=float(sum(per_dev)) if per_dev else float("nan"),
            duration_s=t1 - self._t0,
            per_device_j=[float(x) for x in per_dev],
            device_indices=list(self.device_indices),
            start_monotonic=self._t0,
            end_monotonic=t1,
            start_unix_ns=self._u0,
            end_unix_ns=u1,
        )
