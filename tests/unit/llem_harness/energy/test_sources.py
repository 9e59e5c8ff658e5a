"""Every energy source on CPU: real code, fake hardware libraries behind the same names."""

from __future__ import annotations

import sys
import types

import pytest

from llem_harness.energy import select
from llem_harness.energy.base import EnergySourceUnavailable, EnergyWindow
from llem_harness.energy.nvml import NVMLEnergySource
from llem_harness.energy.rapl import RAPLEnergySource
from tests.unit.llem_harness import fake_pynvml


@pytest.fixture
def two_gpus(monkeypatch):
    fake = fake_pynvml.make(
        [
            {"uuid": "GPU-a", "energy_mj": [1_000, 6_000], "power_mw": 300_000},
            {"uuid": "GPU-b", "energy_mj": [2_000, 4_500], "power_mw": 200_000},
        ]
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def test_nvml_sums_over_gpus_and_keeps_per_gpu(two_gpus):
    src = NVMLEnergySource([0, 1])
    with EnergyWindow(src, [0, 1]) as w:
        pass
    assert w.reading.per_device_j == [5.0, 2.5]
    assert w.reading.joules == 7.5
    assert w.reading.device_indices == [0, 1]
    # the counter is read exactly at the two edges, never polled
    assert [c for c in two_gpus.calls if c[0] == "energy"] == [("energy", 0), ("energy", 1)] * 2


def test_gpu_without_counter_is_unavailable_not_zero(monkeypatch):
    fake = fake_pynvml.make([{"uuid": "GPU-old", "energy_mj": 0, "power_mw": 1, "no_counter": 1}])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    ok, why = NVMLEnergySource.available([0])
    assert not ok and "total-energy counter" in why
    with pytest.raises(EnergySourceUnavailable, match="energy_backend=nvml"):
        select.select_source("nvml", "cuda", [0])


def _fake_zeus(monkeypatch, energies: dict[int, float]):
    calls: list[tuple] = []

    class Measurement:
        def __init__(self, gpu_energy):
            self.gpu_energy = gpu_energy

    class ZeusMonitor:
        def __init__(self, gpu_indices, cpu_indices):
            calls.append(("init", tuple(gpu_indices), tuple(cpu_indices)))

        def begin_window(self, key, sync_execution=True):
            calls.append(("begin", key, sync_execution))

        def end_window(self, key, sync_execution=True):
            calls.append(("end", key, sync_execution))
            return Measurement(dict(energies))

    class GPUs:
        def supports_get_total_energy_consumption(self, i):
            return i in energies

    zeus = types.ModuleType("zeus")
    mon = types.ModuleType("zeus.monitor")
    mon.ZeusMonitor = ZeusMonitor
    dev = types.ModuleType("zeus.device")
    dev.get_gpus = GPUs
    monkeypatch.setitem(sys.modules, "zeus", zeus)
    monkeypatch.setitem(sys.modules, "zeus.monitor", mon)
    monkeypatch.setitem(sys.modules, "zeus.device", dev)
    return calls


def test_zeus_source_windows_without_extra_sync(monkeypatch):
    calls = _fake_zeus(monkeypatch, {0: 10.0, 1: 4.0})
    from llem_harness.energy.zeus import ZeusEnergySource

    assert ZeusEnergySource.available([0, 1]) == (True, "")
    src = ZeusEnergySource([0, 1])
    with EnergyWindow(src, [0, 1]) as w:
        pass
    assert w.reading.per_device_j == [10.0, 4.0] and w.reading.joules == 14.0
    assert calls[0] == ("init", (0, 1), ())  # no CPU/RAPL monitoring
    assert calls[1][0] == "begin" and calls[1][2] is False
    assert calls[2][0] == "end" and calls[2][1] == calls[1][1]
    ok, why = ZeusEnergySource.available([2])
    assert not ok and "GPU 2" in why


def test_codecarbon_source_reads_gpu_energy_kwh(monkeypatch):
    made: list[dict] = []

    class Tracker:
        def __init__(self, **kw):
            made.append(kw)
            self.final_emissions_data = None

        def start(self):
            pass

        def stop(self):
            self.final_emissions_data = types.SimpleNamespace(gpu_energy=0.001)  # kWh

    cc = types.ModuleType("codecarbon")
    cc.OfflineEmissionsTracker = Tracker
    monkeypatch.setitem(sys.modules, "codecarbon", cc)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml.make([]))
    from llem_harness.energy.codecarbon import CodeCarbonEnergySource

    assert CodeCarbonEnergySource.available([0])[0]
    src = CodeCarbonEnergySource([0], measure_power_secs=0.5)
    with EnergyWindow(src, [0]) as w:
        pass
    assert w.reading.joules == pytest.approx(3600.0)
    kw = made[0]
    assert kw["country_iso_code"] and kw["tracking_mode"] == "process"
    assert kw["measure_power_secs"] == 0.5 and kw["save_to_file"] is False
    assert src.per_device is False
    with pytest.raises(RuntimeError):
        src.end()


def test_auto_picks_zeus_then_nvml(monkeypatch, two_gpus):
    _fake_zeus(monkeypatch, {0: 1.0})
    src, why = select.select_source("auto", "cuda", [0])
    assert src.name == "zeus" and why is None
    monkeypatch.setitem(sys.modules, "zeus.monitor", None)  # import fails -> next in order
    src, why = select.select_source("auto", "cuda", [0])
    assert src.name == "nvml"


def test_explicit_unavailable_choice_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    with pytest.raises(EnergySourceUnavailable, match="codecarbon"):
        select.select_source("codecarbon", "cuda", [0])


def test_none_and_cpu_without_rapl(monkeypatch, tmp_path):
    assert select.select_source("none", "cuda", [0])[0] is None
    monkeypatch.setattr("llem_harness.energy.rapl.POWERCAP", tmp_path / "missing")
    src, why = select.select_source("auto", "cpu", [])
    assert src is None and "rapl" in why


def _powercap(root, zones):
    for name, (energy, mx) in zones.items():
        z = root / name
        z.mkdir(parents=True)
        (z / "energy_uj").write_text(f"{energy}\n")
        (z / "max_energy_range_uj").write_text(f"{mx}\n")
    return root


def test_rapl_package_zones_and_wraparound(tmp_path):
    root = _powercap(
        tmp_path,
        {"intel-rapl:0": (1_000_000, 10_000_000), "intel-rapl:1": (9_500_000, 10_000_000)},
    )
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone (core): must be ignored
    (tmp_path / "intel-rapl:0:0" / "energy_uj").write_text("5\n")
    assert RAPLEnergySource.available([], root=root) == (True, "")
    src = RAPLEnergySource([], root=root)
    src.begin()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3000000\n")
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("500000\n")  # wrapped
    assert src.end() == [pytest.approx(2.0), pytest.approx(1.0)]


def test_rapl_unreadable_gives_reason(tmp_path):
    root = _powercap(tmp_path, {"intel-rapl:0": (1, 10)})
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("not-a-number")
    ok, why = RAPLEnergySource.available([], root=root)
    assert not ok and "not readable" in why
    assert RAPLEnergySource.available([], root=tmp_path / "nope")[0] is False
