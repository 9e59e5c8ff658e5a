"""Background power/utilisation/memory sampler writing a phase-labelled time series.

The sampling runs in its own process by default (:mod:`llem_harness.sampler_proc`: an
in-process thread takes the GIL from the thread that launches the decode kernels at every
NVML read, see there); ``runner="thread"`` keeps the in-process thread, which the harness
falls back to if the process cannot start. Either way the reads are those of
:class:`llem_harness.nvml_reader.NvmlReader`, every ``interval_s`` with jitter, and the
energy *counter* (4 ms a read) is never polled here: the energy source reads it at window
edges.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
import random
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from llem_harness.nvml_reader import NvmlReader, Sample
from llem_harness.sampler_proc import sample_every

__all__ = ["THROTTLE_BITS", "PowerSampler", "Sample", "throttle_reasons"]

log = logging.getLogger(__name__)

#: how long the sampler process may take to open NVML and say so
READY_TIMEOUT_S = 60.0

#: how often the slow fields (memory, temperature, clocks, average power) are read; power,
#: utilisation and the clock-event reasons are read at every sample. Why: see
#: :mod:`llem_harness.nvml_reader` (the full set of reads slowed the watched decode loop)
FULL_READ_S = 1.0


def full_every(interval_s: float, full_read_s: float = FULL_READ_S) -> int:
    """Every how many samples all fields are read: about once per ``full_read_s`` (0:
    every sample)."""
    return max(1, round(full_read_s / interval_s)) if interval_s > 0 else 1

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
        self, device_indices: list[int], interval_s: float = 0.1, jitter: float = 0.5,
        seed: int = 0, runner: str = "process", full_read_s: float = FULL_READ_S,
    ) -> None:
        self.interval_s = interval_s
        #: every how many samples the slow fields are read too
        self.full_every = full_every(interval_s, full_read_s)
        #: each gap is interval_s * U(1 - jitter, 1 + jitter): the mean rate stays the same,
        #: but a periodic load (one decode step every ~20-30 ms) can no longer alias with the
        #: sampling period into a biased integral; the error becomes random and shrinks with
        #: the number of samples.
        self.jitter = max(0.0, min(jitter, 0.9))
        self.seed = seed
        self._rng = random.Random(seed)
        self.device_indices = device_indices or [0]
        self.samples: list[Sample] = []
        self.phase = "idle"
        #: (monotonic time, phase) of every phase change: labels the process's samples
        self._marks: list[tuple[float, str]] = [(float("-inf"), self.phase)]
        #: "process" or "thread"; after __enter__, the one that runs
        self.runner = runner
        #: why the process runner was not used (None when it was, or was not asked for)
        self.fallback_reason: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._reader: NvmlReader | None = None
        self.unavailable_reason: str | None = None
        self.power_method: str | None = None
        #: Unix ns minus monotonic ns, read once: maps every sample to wall-clock time
        self.unix_offset_ns = time.time_ns() - time.monotonic_ns()
        try:
            self._reader = NvmlReader.open(self.device_indices, full_every=self.full_every)
            self.power_method = self._reader.power_method
        except Exception as exc:
            self.unavailable_reason = f"no NVML power readings ({type(exc).__name__}: {exc})"
            self._reader = None

    @property
    def active(self) -> bool:
        return self._reader is not None

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self._marks.append((time.monotonic(), phase))

    # -- the in-process thread ------------------------------------------------------------
    def sample_once(self, t: float) -> None:
        """One reading of every GPU, stamped ``t`` and labelled with the current phase (the
        thread's step; tests drive it directly)."""
        assert self._reader is not None
        self.samples += self._reader.read(t, self.phase)

    def _loop(self) -> None:
        sample_every(self.sample_once, lambda wait_s: self._stop.wait(max(0.0, wait_s)),
                     self.interval_s, self.jitter, self._rng)

    def _start_thread(self) -> None:
        self.runner = "thread"
        self._thread = threading.Thread(target=self._loop, name="llem-sampler", daemon=True)
        self._thread.start()

    # -- the sampler's own process --------------------------------------------------------
    def _child_env(self) -> dict[str, str]:
        """The harness's environment, with this package's folder first on PYTHONPATH so
        the child imports the same llem_harness whatever put it on ``sys.path``."""
        here = str(Path(__file__).resolve().parents[1])
        rest = os.environ.get("PYTHONPATH", "")
        return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, rest) if p)}

    def _start_process(self) -> str | None:
        """Start the sampler process and wait until NVML is open there; the reason it
        could not, else None."""
        argv = [sys.executable, "-m", "llem_harness.sampler_proc",
                "--gpus", ",".join(map(str, self.device_indices)),
                "--interval", repr(self.interval_s), "--jitter", repr(self.jitter),
                "--seed", str(self.seed), "--power-method", self.power_method or "average",
                "--full-every", str(self.full_every)]
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True, env=self._child_env())
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], READY_TIMEOUT_S)
        line = self._proc.stdout.readline() if ready else ""
        try:
            hello = json.loads(line) if line else {}
        except json.JSONDecodeError:
            hello = {"error": line.strip()[:200]}
        if hello.get("ready"):
            return None
        self._kill()
        return hello.get("error") or f"no answer in {READY_TIMEOUT_S:.0f} s"

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.communicate()
            self._proc = None

    def _collect(self) -> None:
        """Stop the process, take its samples and label each with the phase in force at
        its time."""
        proc, self._proc = self._proc, None
        assert proc is not None
        try:
            out, _ = proc.communicate("stop\n", timeout=30)
            rows = json.loads(out.strip().splitlines()[-1]) if out.strip() else []
        except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
            proc.kill()
            proc.communicate()
            log.warning("power sampler process gave no samples: %s", exc)
            return
        times = [t for t, _ in self._marks]
        for row in rows:
            s = Sample(*row)
            s.phase = self._marks[bisect.bisect_right(times, s.t) - 1][1]
            self.samples.append(s)

    def __enter__(self) -> PowerSampler:
        if not self.active:
            return self
        if self.runner == "process":
            why = self._start_process()
            if why is None:
                return self
            self.fallback_reason = f"sampler process did not start ({why}); sampling in a thread"
            log.warning("%s", self.fallback_reason)
        self._start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._collect()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- analysis -------------------------------------------------------------------------
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
