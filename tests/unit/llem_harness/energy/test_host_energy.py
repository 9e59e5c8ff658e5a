"""CPU and DRAM energy through powercap RAPL beside the GPU's (issue 17), on a fake sysfs
tree laid out as the kernel does (package zones, named sub-zones, wrapping counters)."""

from __future__ import annotations

from pathlib import Path

from llem_harness.energy.host import HostEnergy, dram_zones


def _zone(path: Path, name: str, uj: int, max_uj: int = 262_143_328_850) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


def test_cpu_and_dram_over_the_window_with_wraparound(tmp_path: Path) -> None:
    pkg = _zone(tmp_path / "intel-rapl:0", "package-0", 1_000_000)
    _zone(pkg / "intel-rapl:0:0", "core", 5)
    dram = _zone(pkg / "intel-rapl:0:1", "dram", 900, max_uj=1000)
    assert dram_zones(tmp_path) == [dram]
    host = HostEnergy(tmp_path)
    host.begin()
    (pkg / "energy_uj").write_text("3500000\n")  # +2.5 J
    (dram / "energy_uj").write_text("400\n")  # wrapped: +500 uJ
    m = host.end()
    assert (m.cpu_j, m.dram_j, m.method, m.cpu_zones) == (2.5, 0.0005, "rapl-powercap", 1)


def test_unreadable_or_missing_rapl_is_null_with_the_reason(tmp_path: Path) -> None:
    m = HostEnergy(tmp_path / "none").end()
    assert m.cpu_j is None and "no RAPL zones" in m.null_reasons["cpu_j"]
    pkg = _zone(tmp_path / "intel-rapl:0", "package-0", 1)
    host = HostEnergy(tmp_path)
    (pkg / "energy_uj").unlink()
    (pkg / "energy_uj").mkdir()  # reading it fails like a root-only file
    host.begin()
    m = host.end()
    assert m.cpu_j is None and "not readable" in m.null_reasons["cpu_j"]
