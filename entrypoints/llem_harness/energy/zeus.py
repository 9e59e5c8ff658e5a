"""Zeus (ml.energy): ``ZeusMonitor.begin_window`` / ``end_window`` over the experiment's GPUs.

Zeus reads the same NVML total-energy counter as :mod:`.nvml` (Volta+), with its own
device discovery and CUDA_VISIBLE_DEVICES handling; it is first in ``auto`` because it is
the field's maintained measurement library and records its own version. We pass
``sync_execution=False``: the runner synchronises the device itself right before closing a
window, so Zeus adds no second sync, and ``cpu_indices=[]`` so it does not touch RAPL.
"""

from __future__ import annotations

import itertools
from importlib import metadata

from llem_harness.energy.base import EnergySource

_counter = itertools.count()


class ZeusEnergySource(EnergySource):
    name = "zeus"

    @classmethod
    def available(cls, device_indices: list[int]) -> tuple[bool, str]:
        try:
            from zeus.monitor import ZeusMonitor  # noqa: F401
        except Exception as exc:
            return False, f"zeus not importable ({type(exc).__name__}: {exc})"
        try:
            from zeus.device import get_gpus

            gpus = get_gpus()
            for i in device_indices or [0]:
                if not gpus.supports_get_total_energy_consumption(i):
                    return False, f"GPU {i} has no total-energy counter (needs Volta or newer)"
        except Exception as exc:
            return False, f"zeus sees no usable GPU ({type(exc).__name__}: {exc})"
        return True, ""

    def __init__(self, device_indices: list[int]) -> None:
        from zeus.monitor import ZeusMonitor

        self._indices = list(device_indices or [0])
        self._monitor = ZeusMonitor(gpu_indices=self._indices, cpu_indices=[])
        self._key = ""

    def version(self) -> str | None:
        try:
            return metadata.version("zeus")
        except metadata.PackageNotFoundError:
            return None

    def begin(self) -> None:
        self._key = f"llem-{next(_counter)}"
        self._monitor.begin_window(self._key, sync_execution=False)

    def end(self) -> list[float]:
        m = self._monitor.end_window(self._key, sync_execution=False)
        return [float(m.gpu_energy[i]) for i in self._indices]
