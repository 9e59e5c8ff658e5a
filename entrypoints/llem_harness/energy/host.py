"""CPU package and DRAM energy beside the GPU's, over the same measured window (issue 17).

Read through powercap RAPL (``/sys/class/powercap/intel-rapl:N`` package zones and their
``dram`` sub-zones; AMD exposes the same interface), each counter corrected for wraparound
at ``max_energy_range_uj``. Recorded apart from the GPU energy, with the method, or null with
the reason (no zones, or not readable without root, as on most cloud VMs)."""

from __future__ import annotations

from pathlib import Path

from llem_harness.energy.rapl import POWERCAP, package_zones
from llem_schema.result import HostEnergyMetrics


def dram_zones(root: Path | None = None) -> list[Path]:
    """``dram`` sub-zones of each package (intel-rapl:N:M whose name is 'dram')."""
    out = []
    for pkg in package_zones(root):
        for sub in sorted(pkg.glob(f"{pkg.name}:*")):
            try:
                if (sub / "name").read_text().strip() == "dram" and (sub / "energy_uj").exists():
                    out.append(sub)
            except OSError:
                continue
    return out


class HostEnergy:
    """Opened at the measured window's start, closed at its end."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or POWERCAP
        self.cpu, self.dram = package_zones(self.root), dram_zones(self.root)
        self._start: dict[Path, int] = {}
        self.reason: str | None = None if self.cpu else f"no RAPL zones under {self.root}"

    def _read(self, zones: list[Path]) -> dict[Path, int]:
        return {z: int((z / "energy_uj").read_text()) for z in zones}

    def begin(self) -> None:
        if self.reason:
            return
        try:
            self._start = self._read(self.cpu + self.dram)
        except (OSError, ValueError) as exc:
            self.reason = f"RAPL not readable ({type(exc).__name__}: {exc}); it usually needs root"

    def _joules(self, zones: list[Path], end: dict[Path, int]) -> float | None:
        if not zones:
            return None
        total = 0
        for z in zones:
            a, b = self._start[z], end[z]
            total += b - a if b >= a else b + int((z / "max_energy_range_uj").read_text()) - a
        return total / 1e6

    def end(self) -> HostEnergyMetrics:
        if self.reason:
            return HostEnergyMetrics.unavailable(self.reason)
        try:
            now = self._read(self.cpu + self.dram)
            cpu, dram = self._joules(self.cpu, now), self._joules(self.dram, now)
        except (OSError, ValueError) as exc:
            return HostEnergyMetrics.unavailable(f"RAPL read failed ({exc})")
        reasons = {} if dram is not None else {"dram_j": "no dram RAPL zone on this host"}
        return HostEnergyMetrics(cpu_j=cpu, dram_j=dram, method="rapl-powercap",
                                 cpu_zones=len(self.cpu), null_reasons=reasons)
