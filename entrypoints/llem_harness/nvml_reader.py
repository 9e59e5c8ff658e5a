"""One sample of every GPU of a run through NVML: power, utilisation, memory, temperature,
clocks and clock-event reasons.

Shared by the two places a sample can be taken: the sampler's own process
(:mod:`llem_harness.sampler_proc`, the default) and the in-process thread
(:class:`llem_harness.sampler.PowerSampler` with ``runner="thread"``).

Which power: on Ampere/Hopper ``nvmlDeviceGetPowerUsage`` is a 1 s moving average, which
lags every phase change by ~0.5 s and biases short phases. We read the instantaneous field
(``NVML_FI_DEV_POWER_INSTANT``) when the driver offers it and fall back to the average
otherwise; ``power_method`` records which one the trace holds.

Why not every field at every sample: on the H100 a sampler making all eight reads ten times
a second slowed a batch-8 ``generate`` it watched by 0.9% on a quiet machine and 6% on a
busy one, and by as much from cores the decode loop did not use, while the power read
alone cost 0.6% [-4%, +6%] (benchmarks/results/h100-session11). So power, utilisation and
the clock-event reasons (the window's figures and its throttle check; the last two are
~6 us reads) are read at every sample, and the fields that change slowly or only describe
(average power, memory, temperature, clocks) at every ``full_every``-th; the samples
between carry None there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Sample:
    t: float  # time.monotonic()
    gpu: int
    phase: str
    power_w: float
    power_avg_w: float | None
    util_pct: float | None
    mem_used_bytes: int | None
    temp_c: float | None = None
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    #: clock event ("throttle") reasons bitmask, decoded by :func:`throttle_reasons`
    throttle: int | None = None


class NvmlReader:
    """Reads every GPU of ``device_indices`` (their NVML ``handles``) through ``nvml``."""

    def __init__(self, nvml: Any, handles: list[object], device_indices: list[int],
                 power_method: str | None = None, full_every: int = 1) -> None:
        self.nvml, self.handles, self.device_indices = nvml, handles, device_indices
        self.power_method = power_method or ("instant" if self._instant_ok() else "average")
        #: every how many reads the slow fields are read too (see the module docstring)
        self.full_every = max(1, full_every)
        self._reads = 0

    @classmethod
    def open(cls, device_indices: list[int], power_method: str | None = None,
             full_every: int = 1) -> NvmlReader:
        """Initialise NVML (the ``pynvml`` module found on the path) for these devices."""
        import pynvml

        from llem_harness.nvml_devices import nvml_handles

        pynvml.nvmlInit()
        return cls(pynvml, nvml_handles(device_indices), device_indices, power_method,
                   full_every)

    def _instant_ok(self) -> bool:
        nv = self.nvml
        field = getattr(nv, "NVML_FI_DEV_POWER_INSTANT", None)
        if field is None or not hasattr(nv, "nvmlDeviceGetFieldValues") or not self.handles:
            return False
        try:
            return self._instant(self.handles[0]) is not None
        except Exception:
            return False

    def _instant(self, h: object) -> float | None:
        nv = self.nvml
        (fv,) = nv.nvmlDeviceGetFieldValues(h, [nv.NVML_FI_DEV_POWER_INSTANT])
        if getattr(fv, "nvmlReturn", 0) != 0:
            return None
        return float(fv.value.uiVal) / 1000.0

    def _power(self, h: object) -> float:
        if self.power_method == "instant":
            w = self._instant(h)
            if w is not None:
                return w
        return self.nvml.nvmlDeviceGetPowerUsage(h) / 1000.0

    def read(self, t: float, phase: str) -> list[Sample]:
        """One sample per GPU, stamped ``t`` and labelled ``phase``: power, utilisation and
        the clock-event reasons every time, the slow fields on the first read and every
        ``full_every``-th after it."""
        full = self._reads % self.full_every == 0
        self._reads += 1
        return [self._sample(t, gpu, phase, h, full)
                for gpu, h in zip(self.device_indices, self.handles, strict=False)]

    def _sample(self, t: float, gpu: int, phase: str, h: object, full: bool) -> Sample:
        s = Sample(t, gpu, phase, self._power(h), None, self._util(h), None,
                   throttle=self._reasons(h))
        if not full:
            return s
        nv = self.nvml
        try:
            instant = self.power_method == "instant"
            s.power_avg_w = nv.nvmlDeviceGetPowerUsage(h) / 1000.0 if instant else s.power_w
        except Exception:
            s.power_avg_w = None
        try:
            s.mem_used_bytes = int(nv.nvmlDeviceGetMemoryInfo(h).used)
        except Exception:
            s.mem_used_bytes = None
        s.temp_c, s.sm_clock_mhz, s.mem_clock_mhz = self._thermal(h)
        return s

    def _util(self, h: object) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        except Exception:
            return None

    def _thermal(self, h: object) -> tuple[float | None, int | None, int | None]:
        """Temperature, SM and memory clocks: each a ~µs NVML read; a field the driver does
        not offer is None."""
        nv = self.nvml

        def read(fn: str, *args: Any) -> Any:
            try:
                return getattr(nv, fn)(h, *args)
            except Exception:
                return None

        temp = read("nvmlDeviceGetTemperature", getattr(nv, "NVML_TEMPERATURE_GPU", 0))
        sm = read("nvmlDeviceGetClockInfo", getattr(nv, "NVML_CLOCK_SM", 1))
        mem = read("nvmlDeviceGetClockInfo", getattr(nv, "NVML_CLOCK_MEM", 2))
        return (None if temp is None else float(temp), sm, mem)

    def _reasons(self, h: object) -> int | None:
        """The clock-event ("throttle") reasons bitmask (its older name on old drivers)."""
        for fn in ("nvmlDeviceGetCurrentClocksEventReasons",
                   "nvmlDeviceGetCurrentClocksThrottleReasons"):
            try:
                return int(getattr(self.nvml, fn)(h))
            except Exception:
                continue
        return None
