"""Pick the energy source: Zeus -> NVML direct -> CodeCarbon on GPUs; RAPL on CPU hosts."""

from __future__ import annotations

import importlib

from llem_harness.energy.base import EnergySource, EnergySourceUnavailable

_SOURCES: dict[str, str] = {
    "zeus": "llem_harness.energy.zeus:ZeusEnergySource",
    "nvml": "llem_harness.energy.nvml:NVMLEnergySource",
    "codecarbon": "llem_harness.energy.codecarbon:CodeCarbonEnergySource",
    "rapl": "llem_harness.energy.rapl:RAPLEnergySource",
}
GPU_ORDER = ("zeus", "nvml", "codecarbon")
CPU_ORDER = ("rapl",)


def source_class(name: str) -> type[EnergySource] | None:
    module, cls = _SOURCES[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError:
        return None


def select_source(
    requested: str, device: str, device_indices: list[int]
) -> tuple[EnergySource | None, str | None]:
    """(source, None) or (None, reason energy will be null).

    ``auto`` walks the priority list; an explicit choice that cannot run is an error
    (:class:`EnergySourceUnavailable`) because the user asked for that method by name.
    """
    if requested == "none":
        return None, "energy measurement disabled (measurement.energy_backend: none)"
    if requested != "auto":
        cls = source_class(requested)
        if cls is None:
            raise EnergySourceUnavailable(
                f"measurement.energy_backend={requested}: its package is not installed "
                f"(pip install 'llenergymeasure[{requested}]')"
            )
        ok, why = cls.available(device_indices)
        if not ok:
            raise EnergySourceUnavailable(f"measurement.energy_backend={requested}: {why}")
        return cls(device_indices), None
    reasons = []
    for name in GPU_ORDER if device == "cuda" else CPU_ORDER:
        cls = source_class(name)
        if cls is None:
            reasons.append(f"{name}: not installed")
            continue
        ok, why = cls.available(device_indices)
        if ok:
            return cls(device_indices), None
        reasons.append(f"{name}: {why}")
    where = "GPU" if device == "cuda" else "CPU-only host"
    return None, f"no energy source on this {where} ({'; '.join(reasons)})"
