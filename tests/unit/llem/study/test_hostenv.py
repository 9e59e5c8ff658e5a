"""What the host reads about its GPUs and Python before a rerun: NVML, else nvidia-smi, else
none; torch's CUDA version without importing torch."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from llem.study import hostenv


def _fake_nvml(monkeypatch: pytest.MonkeyPatch, gpus: list[dict], fail_init: bool = False
               ) -> None:
    """A pynvml with the calls hostenv makes; per-GPU values from ``gpus``."""
    nv = types.ModuleType("pynvml")
    nv.NVML_CLOCK_SM = 1

    def init() -> None:
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def unsupported(h: int) -> None:
        raise RuntimeError("Not Supported")

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: None
    nv.nvmlDeviceGetCount = lambda: len(gpus)
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetName = lambda h: gpus[h]["name"].encode()  # older bindings: bytes
    nv.nvmlDeviceGetUUID = lambda h: gpus[h]["uuid"]
    nv.nvmlDeviceGetEnforcedPowerLimit = lambda h: gpus[h]["limit_mw"]
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=80 * 2**30)
    nv.nvmlDeviceGetMaxClockInfo = lambda h, clock: 1980
    nv.nvmlDeviceGetPersistenceMode = lambda h: 1
    nv.nvmlDeviceGetMigMode = lambda h: (0, 0)
    nv.nvmlDeviceGetEccMode = unsupported
    nv.nvmlSystemGetDriverVersion = lambda: "580.82.07"
    nv.nvmlSystemGetCudaDriverVersion = lambda: 13000
    monkeypatch.setitem(sys.modules, "pynvml", nv)


GPUS = [{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-aaa", "limit_mw": 700000},
        {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-bbb", "limit_mw": 500000}]


def test_nvml_reads_the_selected_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvml(monkeypatch, GPUS)
    out = hostenv.gpus([1])
    assert out["device"] == "cuda" and out["driver_version"] == "580.82.07"
    assert out["cuda_driver_version"] == "13.0"
    assert out["gpus[0].uuid"] == "GPU-bbb" and out["gpus[0].power_limit_w"] == 500.0
    assert out["gpus[0].name"] == "NVIDIA H100 80GB HBM3"
    assert out["gpus[0].persistence_mode"] is True and out["gpus[0].mig_mode"] is False
    assert out["gpus[0].ecc_enabled"] is None  # unsupported: unknown, not False
    assert out["gpus[0].memory_total_bytes"] == 80 * 2**30
    assert "gpus[1].name" not in out
    by_uuid = hostenv.gpus(["GPU-aaa", "GPU-bbb"])
    assert (by_uuid["gpus[0].power_limit_w"], by_uuid["gpus[1].power_limit_w"]) == (700.0, 500.0)


def test_nvidia_smi_when_nvml_cannot_start(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    _fake_nvml(monkeypatch, GPUS, fail_init=True)
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        'case "$1" in --query-gpu=*) '
        "echo 'NVIDIA H200, GPU-ccc, 143771, 600.00, 1980, Enabled, [N/A], Disabled, 580.1';;\n"
        "*) echo '| NVIDIA-SMI 580.1  Driver Version: 580.1  CUDA Version: 13.0 |';; esac\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    out = hostenv.gpus([0])
    assert out["gpus[0].name"] == "NVIDIA H200" and out["gpus[0].power_limit_w"] == 600.0
    assert out["gpus[0].memory_total_bytes"] == 143771 * 2**20
    assert out["gpus[0].mig_mode"] is None and out["gpus[0].ecc_enabled"] is False
    assert (out["driver_version"], out["cuda_driver_version"]) == ("580.1", "13.0")


def test_no_driver_is_a_cpu_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    monkeypatch.setenv("PATH", str(tmp_path))
    assert hostenv.gpus([0]) == {"device": "cpu"}


def test_python_side_reads_installed_versions() -> None:
    from importlib.metadata import version

    out = hostenv.python_side(["pydantic", "surely-not-installed-llem"])
    assert out["packages.pydantic"] == version("pydantic")
    assert out["packages.surely-not-installed-llem"] is None
    assert out["host.python"] == sys.version.split()[0]


def test_torch_cuda_version_from_its_file(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    pkg = tmp_path / "torch"
    pkg.mkdir()
    (pkg / "version.py").write_text("from typing import Optional\n"
                                    "__version__ = '2.9.0+cu128'\n"
                                    "cuda: Optional[str] = '12.8'\n")
    spec = types.SimpleNamespace(submodule_search_locations=[str(pkg)])
    monkeypatch.setattr(hostenv, "find_spec", lambda name: spec)
    assert hostenv.torch_cuda_version() == "12.8"
    (pkg / "version.py").write_text("cuda: Optional[str] = None\n")
    assert hostenv.torch_cuda_version() is None
    monkeypatch.setattr(hostenv, "find_spec", lambda name: None)
    assert hostenv.torch_cuda_version() is None
