"""The GPU's total-energy counter, read by the reference loops themselves (no llem code)."""

from __future__ import annotations


class Counter:
    """``nvmlDeviceGetTotalEnergyConsumption`` of GPU 0 (mJ), read at segment edges."""

    def __init__(self, index: int = 0) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nv = pynvml
        self._h = pynvml.nvmlDeviceGetHandleByIndex(index)

    def read_j(self) -> float:
        return self._nv.nvmlDeviceGetTotalEnergyConsumption(self._h) / 1000.0
