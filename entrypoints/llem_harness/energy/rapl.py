"""Intel/AMD RAPL through /sys/class/powercap: CPU package energy on CPU-only hosts."""

from __future__ import annotations

from pathlib import Path

from llem_harness.energy.base import EnergySource

POWERCAP = Path("/sys/class/powercap")


def package_zones(root: Path = POWERCAP) -> list[Path]:
    """Top-level package zones (intel-rapl:N), not their sub-zones (core, uncore, dram)."""
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1 and (p / "energy_uj").exists()
    )


class RAPLEnergySource(EnergySource):
    name = "rapl"

    def __init__(self, device_indices: list[int], root: Path = POWERCAP) -> None:
        self._zones = package_zones(root)
        self._start: list[int] = []
        self._max = [int((z / "max_energy_range_uj").read_text()) for z in self._zones]

    @classmethod
    def available(cls, device_indices: list[int], root: Path = POWERCAP) -> tuple[bool, str]:
        zones = package_zones(root)
        if not zones:
            return False, "no RAPL zones under /sys/class/powercap"
        try:
            for z in zones:
                int((z / "energy_uj").read_text())
        except (OSError, ValueError) as exc:
            return False, f"RAPL not readable ({exc}); it usually needs root"
        return True, ""

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self._zones]

    def begin(self) -> None:
        self._start = self._read()

    def end(self) -> list[float]:
        out = []
        for a, b, mx in zip(self._start, self._read(), self._max):
            delta = b - a if b >= a else b + mx - a  # the counter wraps at max_energy_range_uj
            out.append(delta / 1e6)
        return out
