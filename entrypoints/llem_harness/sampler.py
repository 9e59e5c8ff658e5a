"""Background power/utilisation/memory sampler writing a phase-labelled time series.

Power reads cost ~1 µs, so a 100 ms thread adds no measurable load; the energy *counter*
(4 ms a read) is never polled here — it is read at window edges by the energy source.

Which power: on Ampere/Hopper ``nvmlDeviceGetPowerUsage`` is a 1 s moving average, which
lags every phase change by ~0.5 s and biases short phases. We read the instantaneous field
(``NVML_FI_DEV_POWER_INSTANT``) when the driver offers it and fall back to the average
otherwise; ``power_method`` records which one the trace holds.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
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


#: NVML clock-event reason bits (nvml.h: nvmlClocksEventReason*) that mean the GPU ran
#: slower than it could: the power cap, thermal slowdown (software and hardware) and
#: hardware slowdown (power brake, external signal)
THROTTLE_BITS = {
    "power_cap": 0x4,
    "hw_slowdown": 0x8 | 0x80,  # HwSlowdown, HwPowerBrakeSlowdown
    "thermal": 0x20 | 0x40,  # SwThermalSlowdown, HwThermalSlowdown
}


def throttle_reasons(mask: int | None) -> list[str]:
    """Names of the slowdown reasons set in an NVML clock-event mask."""
    if not mask:
        return []
    return [name for name, bits in THROTTLE_BITS.items() if mask & bits]


class PowerSampler:
    """Samples every GPU of the experiment every ``interval_s`` while running."""

    def __init__(
        self, device_indices: list[int], interval_s: float = 0.1, jitter: float = 0.5, seed: int = 0
    ) -> None:
        self.interval_s = interval_s
        #: each gap is interval_s * U(1 - jitter, 1 + jitter): the mean rate stays the same,
        #: but a periodic load (one decode step every ~20-30 ms) can no longer alias with the
        #: sampling period into a biased integral; the error becomes random and shrinks with
        #: the number of samples.
        self.jitter = max(0.0, min(jitter, 0.9))
        self._rng = random.Random(seed)
        self.device_indices = device_indices or [0]
        self.samples: list[Sample] = []
        self.phase = "idle"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: list[object] = []
        self._nvml = None
        self.unavailable_reason: str | None = None
        self.power_method: str | None = None
        #: Unix ns minus monotonic ns, read once: maps every sample to wall-clock time
        self.unix_offset_ns = time.time_ns() - time.monotonic_ns()
        try:
            import pynvml

            from llem_harness.nvml_devices import nvml_handles

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handles = nvml_handles(device_indices)
            self.power_method = "instant" if self._instant_ok() else "average"
        except Exception as exc:
            self.unavailable_reason = f"no NVML power readings ({type(exc).__name__}: {exc})"
            self._nvml = None

    def _instant_ok(self) -> bool:
        nv = self._nvml
        field = getattr(nv, "NVML_FI_DEV_POWER_INSTANT", None)
        if field is None or not hasattr(nv, "nvmlDeviceGetFieldValues") or not self._handles:
            return False
        try:
            return self._instant(self._handles[0]) is not None
        except Exception:
            return False

    def _instant(self, h: object) -> float | None:
        nv = self._nvml
        (fv,) = nv.nvmlDeviceGetFieldValues(h, [nv.NVML_FI_DEV_POWER_INSTANT])
        if getattr(fv, "nvmlReturn", 0) != 0:
            return None
        return float(fv.value.uiVal) / 1000.0

    def _power(self, h: object) -> float:
        if self.power_method == "instant":
            w = self._instant(h)
            if w is not None:
                return w
        return self._nvml.nvmlDeviceGetPowerUsage(h) / 1000.0

    @property
    def active(self) -> bool:
        return self._nvml is not None

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    def _read(self, t: float) -> None:
        nv = self._nvml
        for gpu, h in zip(self.device_indices, self._handles, strict=False):
            power = self._power(h)
            try:
                instant = self.power_method == "instant"
                avg = nv.nvmlDeviceGetPowerUsage(h) / 1000.0 if instant else power
            except Exception:
                avg = None
            try:
                util = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:
                util = None
            try:
                mem = int(nv.nvmlDeviceGetMemoryInfo(h).used)
            except Exception:
                mem = None
            self.samples.append(Sample(t, gpu, self.phase, power, avg, util, mem,
                                       *self._thermal(h)))

    def _thermal(self, h: object) -> tuple[float | None, int | None, int | None, int | None]:
        """Temperature, SM and memory clocks and the clock-event reasons: each a ~µs NVML
        read; a field the driver does not offer is None."""
        nv = self._nvml

        def read(fn: str, *args: Any) -> Any:
            try:
                return getattr(nv, fn)(h, *args)
            except Exception:
                return None

        temp = read("nvmlDeviceGetTemperature", getattr(nv, "NVML_TEMPERATURE_GPU", 0))
        sm = read("nvmlDeviceGetClockInfo", getattr(nv, "NVML_CLOCK_SM", 1))
        mem = read("nvmlDeviceGetClockInfo", getattr(nv, "NVML_CLOCK_MEM", 2))
        reasons = read("nvmlDeviceGetCurrentClocksEventReasons")
        if reasons is None:
            reasons = read("nvmlDeviceGetCurrentClocksThrottleReasons")
        return (None if temp is None else float(temp), sm, mem,
                None if reasons is None else int(reasons))

    def window_state(self, t0: float, t1: float) -> tuple[float | None, float | None, list[str]]:
        """(temperature at the start, at the end, slowdown reasons seen) of a window."""
        inside = [s for s in self.samples if t0 <= s.t <= t1]
        before = [s for s in self.samples if s.t <= t0 and s.temp_c is not None]
        start = before[-1] if before else next((s for s in inside if s.temp_c is not None),
                                              None)
        end = next((s for s in reversed(inside) if s.temp_c is not None), None)
        reasons: list[str] = []
        for s in inside:
            reasons += [r for r in throttle_reasons(s.throttle) if r not in reasons]
        return (start.temp_c if start else None, end.temp_c if end else None, reasons)

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self._read(time.monotonic())
            next_t += self.interval_s * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def __enter__(self) -> PowerSampler:
        if self.active:
            self._thread = threading.Thread(target=self._loop, name="llem-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- analysis -------------------------------------------------------------------------
    def integrate(self, t0: float, t1: float, column: str = "power_w") -> float | None:
        """Trapezoidal energy (J) of the power trace between t0 and t1, summed over GPUs
        (``column``: power_w, the instant reading where available, or power_avg_w)."""
        total, any_gpu = 0.0, False
        for gpu in self.device_indices:
            pts = [
                (s.t, getattr(s, column))
                for s in self.samples
                if s.gpu == gpu and t0 <= s.t <= t1 and getattr(s, column) is not None
            ]
            if len(pts) < 2:
                continue
            any_gpu = True
            total += sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in itertools.pairwise(pts))
            # extend the edges flat to cover [t0, t1] exactly
            total += (pts[0][0] - t0) * pts[0][1] + (t1 - pts[-1][0]) * pts[-1][1]
        return total if any_gpu else None

    def util_mean(self, t0: float, t1: float) -> float | None:
        """Mean GPU utilisation (%) of the samples between t0 and t1, all GPUs."""
        vals = [s.util_pct for s in self.samples if t0 <= s.t <= t1 and s.util_pct is not None]
        return sum(vals) / len(vals) if vals else None

    def util_by_phase(self) -> dict[str, float]:
        out: dict[str, list[float]] = {}
        for s in self.samples:
            if s.util_pct is not None:
                out.setdefault(s.phase, []).append(s.util_pct)
        return {p: sum(v) / len(v) for p, v in out.items()}

    def by_phase(self) -> dict[str, tuple[int, float, float]]:
        """phase -> (samples, mean W summed over GPUs per timestamp, peak W)."""
        out: dict[str, list[float]] = {}
        per_t: dict[tuple[str, float], float] = {}
        for s in self.samples:
            key = (s.phase, round(s.t, 4))
            per_t[key] = per_t.get(key, 0.0) + s.power_w
        for (phase, _), w in per_t.items():
            out.setdefault(phase, []).append(w)
        return {p: (len(v), sum(v) / len(v), max(v)) for p, v in out.items()}

    def write_parquet(self, path: Path, t_origin: float) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from llem_schema.atomic import atomic_write_bytes

        table = pa.table(
            {
                "t_s": [s.t - t_origin for s in self.samples],
                "unix_ns": [round(s.t * 1e9) + self.unix_offset_ns for s in self.samples],
                "gpu": [s.gpu for s in self.samples],
                "phase": [s.phase for s in self.samples],
                "power_w": [s.power_w for s in self.samples],
                "power_avg_w": [s.power_avg_w for s in self.samples],
                "util_pct": [s.util_pct for s in self.samples],
                "mem_used_bytes": [s.mem_used_bytes for s in self.samples],
                "temp_c": [s.temp_c for s in self.samples],
                "sm_clock_mhz": [s.sm_clock_mhz for s in self.samples],
                "mem_clock_mhz": [s.mem_clock_mhz for s in self.samples],
                **{f"throttle_{name}": [None if s.throttle is None
                                        else bool(s.throttle & bits) for s in self.samples]
                   for name, bits in THROTTLE_BITS.items()},
            }
        )
        origin_unix_ns = round(t_origin * 1e9) + self.unix_offset_ns
        table = table.replace_schema_metadata({
            "llem.t_origin_monotonic_s": repr(t_origin),
            "llem.t_origin_unix_ns": str(origin_unix_ns),
            "llem.note": "unix_ns = t_origin_unix_ns + t_s * 1e9 (same clock mapping per row)",
        })
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
