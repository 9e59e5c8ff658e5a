"""Background power/utilisation/memory sampler writing a phase-labelled time series.

Power reads cost ~1 µs, so a 100 ms thread adds no measurable load; the energy *counter*
(4 ms a read) is never polled here — it is read at window edges by the energy source.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sample:
    t: float  # time.monotonic()
    gpu: int
    phase: str
    power_w: float
    util_pct: float | None
    mem_used_bytes: int | None


class PowerSampler:
    """Samples every GPU of the experiment every ``interval_s`` while running."""

    def __init__(self, device_indices: list[int], interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.device_indices = device_indices or [0]
        self.samples: list[Sample] = []
        self.phase = "idle"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: list[object] = []
        self._nvml = None
        self.unavailable_reason: str | None = None
        try:
            import pynvml

            from llem_harness.nvml_devices import nvml_handles

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handles = nvml_handles(device_indices)
        except Exception as exc:
            self.unavailable_reason = f"no NVML power readings ({type(exc).__name__}: {exc})"

    @property
    def active(self) -> bool:
        return self._nvml is not None

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    def _read(self, t: float) -> None:
        nv = self._nvml
        for gpu, h in zip(self.device_indices, self._handles):
            power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
            try:
                util = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:
                util = None
            try:
                mem = int(nv.nvmlDeviceGetMemoryInfo(h).used)
            except Exception:
                mem = None
            self.samples.append(Sample(t, gpu, self.phase, power, util, mem))

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self._read(time.monotonic())
            next_t += self.interval_s
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
    def integrate(self, t0: float, t1: float) -> float | None:
        """Trapezoidal energy (J) of the power trace between t0 and t1, summed over GPUs."""
        total, any_gpu = 0.0, False
        for gpu in self.device_indices:
            pts = [(s.t, s.power_w) for s in self.samples if s.gpu == gpu and t0 <= s.t <= t1]
            if len(pts) < 2:
                continue
            any_gpu = True
            total += sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(pts, pts[1:]))
            # extend the edges flat to cover [t0, t1] exactly
            total += (pts[0][0] - t0) * pts[0][1] + (t1 - pts[-1][0]) * pts[-1][1]
        return total if any_gpu else None

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
                "gpu": [s.gpu for s in self.samples],
                "phase": [s.phase for s in self.samples],
                "power_w": [s.power_w for s in self.samples],
                "util_pct": [s.util_pct for s in self.samples],
                "mem_used_bytes": [s.mem_used_bytes for s in self.samples],
            }
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
