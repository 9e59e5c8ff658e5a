"""NVML direct: the GPU's total-energy counter read at the window edges only.

``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load, Volta+) refreshes about every
100 ms and a read costs ~4 ms, so it is read exactly twice per window and never polled.
"""

from __future__ import annotations

from llem_harness.energy.base import EnergySource
from llem_harness.nvml_devices import nvml_handles


class NVMLEnergySource(EnergySource):
    name = "nvml"

    @classmethod
    def available(cls, device_indices: list[int]) -> tuple[bool, str]:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:
            return False, f"NVML not available ({type(exc).__name__}: {exc})"
        try:
            for h in nvml_handles(device_indices):
                pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        except Exception as exc:
            return False, f"GPU has no total-energy counter (needs Volta or newer): {exc}"
        return True, ""

    def __init__(self, device_indices: list[int]) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handles = nvml_handles(device_indices)
        self._start: list[int] = []

    def version(self) -> str | None:
        try:
            return str(self._nvml.nvmlSystemGetDriverVersion())
        except Exception:
            return None

    def begin(self) -> None:
        self._start = [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]

    def end(self) -> list[float]:
        stop = [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        return [(b - a) / 1000.0 for a, b in zip(self._start, stop)]
