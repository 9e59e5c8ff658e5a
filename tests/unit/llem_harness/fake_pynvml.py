"""A fake ``pynvml`` module with the calls the harness makes, injected via sys.modules.

Only used where the real library cannot run (no GPU here); the code under test calls it
through exactly the same names as the real module.
"""

from __future__ import annotations

import types


class FieldValue:
    def __init__(self, mw: int) -> None:
        self.nvmlReturn = 0
        self.value = types.SimpleNamespace(uiVal=mw)


def make(gpus: list[dict]) -> types.ModuleType:
    """gpus: dicts with uuid, energy_mj (list consumed per read or int), power_mw,
    limit_mw, optional no_counter / mig_uuids."""
    m = types.ModuleType("pynvml")
    m.NVML_FI_DEV_POWER_INSTANT = 186
    m.calls = []

    class Handle:
        def __init__(self, i: int) -> None:
            self.i = i

    def _gpu(h):
        return gpus[h.i]

    m.nvmlInit = lambda: None
    m.nvmlDeviceGetHandleByIndex = lambda i: Handle(i)

    def by_uuid(u):
        for i, g in enumerate(gpus):
            if g["uuid"] == u or u in g.get("mig_uuids", []):
                return Handle(i)
        raise RuntimeError(f"NVML_ERROR_NOT_FOUND {u}")

    m.nvmlDeviceGetHandleByUUID = by_uuid

    def energy(h):
        g = _gpu(h)
        m.calls.append(("energy", h.i))
        if g.get("no_counter"):
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        e = g["energy_mj"]
        if isinstance(e, list):
            return e.pop(0)
        return e

    m.nvmlDeviceGetTotalEnergyConsumption = energy
    m.nvmlDeviceGetPowerUsage = lambda h: _gpu(h).get("avg_power_mw", _gpu(h)["power_mw"])
    m.nvmlDeviceGetFieldValues = lambda h, fields: [FieldValue(_gpu(h)["power_mw"])]
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=50)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=1 << 30)
    m.nvmlDeviceGetUUID = lambda h: _gpu(h)["uuid"]
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: _gpu(h).get("limit_mw", 700_000)
    m.nvmlSystemGetDriverVersion = lambda: "580.159.04"
    m.nvmlDeviceGetCount = lambda: len(gpus)
    m.NVML_TEMPERATURE_GPU, m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM = 0, 1, 2

    def seq(key, default):  # a list is consumed one value per read, its last value kept
        def read(h, *args):
            v = _gpu(h).get(key, default)
            if isinstance(v, list):
                return v.pop(0) if len(v) > 1 else v[0]
            return v
        return read

    m.nvmlDeviceGetTemperature = seq("temp_c", 45)
    m.nvmlDeviceGetClockInfo = lambda h, clock: _gpu(h).get(
        "clocks", {1: 1980, 2: 2619})[clock]
    m.nvmlDeviceGetCurrentClocksEventReasons = seq("reasons", 0)
    return m
