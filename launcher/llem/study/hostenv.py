"""What the host can know about the environment a run will get, before starting it.

``llem rerun`` shows what differs from the original result before it spends the time to
measure: the GPUs (name, power limit, ...), driver and CUDA from NVML (else ``nvidia-smi``),
the machine, and, when the harness will run in this Python environment, its interpreter and
package versions. Inside a container the packages and Python are the image's, fixed by its
digest, so they are left out here and compared after the run.

Keys are the dotted paths of :func:`llem.study.envdiff.flatten_env`, so both sides compare
key by key. Nothing here imports pynvml or torch at import time (the host install may have
neither); torch's CUDA version is read from its ``version.py`` without importing torch.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from llem_schema import hostfacts

#: GPU fields both NVML and nvidia-smi give without a workload (clocks/temperature vary)
GPU_FIELDS = ("name", "uuid", "memory_total_bytes", "power_limit_w", "max_sm_clock_mhz",
              "persistence_mode", "mig_mode", "ecc_enabled")

Flat = dict[str, Any]


def machine() -> Flat:
    """The machine as the harness's ``environment.host`` records it (hostname apart: a
    container's is its id)."""
    return {
        "host.os": f"{platform.system()} {platform.release()}",
        "host.cpu_model": _cpu_model(),
        "host.cpu_count": os.cpu_count(),
        "host.memory_total_bytes": _mem_total(),
    }


def python_side(package_names: list[str]) -> Flat:
    """This interpreter and the versions of the named distributions (None: not installed),
    i.e. what a harness started by the local runtime records."""
    import sys

    out: Flat = {"host.python": sys.version.split()[0],
                 "cuda_runtime_version": torch_cuda_version()}
    for name in package_names:
        try:
            out[f"packages.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[f"packages.{name}"] = None
    return out


def torch_cuda_version() -> str | None:
    """``torch.version.cuda`` read from the file: importing torch costs seconds."""
    try:
        spec = find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        return None
    m = re.search(r"^cuda\s*(?::[^=]+)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return m.group(1) if m else None


def gpus(selection: list[int | str]) -> Flat:
    """The selected GPUs (NVML indices or UUIDs), driver and CUDA driver version; no GPUs and
    ``device: cpu`` when neither NVML nor nvidia-smi answers."""
    found = _nvml(selection)
    if found is None:
        found = _nvidia_smi(selection)
    if found is None:
        return {"device": "cpu"}
    devices, driver, cuda = found
    out: Flat = {"device": "cuda" if devices else "cpu", "driver_version": driver,
                 "cuda_driver_version": cuda}
    for i, dev in enumerate(devices):
        out.update({f"gpus[{i}].{k}": dev.get(k) for k in GPU_FIELDS})
    return out


def _pick(rows: list[dict[str, Any]], selection: list[int | str]) -> list[dict[str, Any]]:
    by_uuid = {r.get("uuid"): r for r in rows}
    out = []
    for s in selection:
        if isinstance(s, int) or str(s).isdigit():
            if int(s) < len(rows):
                out.append(rows[int(s)])
        elif str(s) in by_uuid:
            out.append(by_uuid[str(s)])
    return out


def _nvml(selection: list[int | str]) -> tuple[list[dict[str, Any]], str | None, str | None] | None:
    try:
        import pynvml  # lazy: host installs may lack nvidia-ml-py
    except ImportError:
        return None
    nv = pynvml
    try:
        nv.nvmlInit()
    except Exception:  # no driver, no library
        return None
    try:
        rows = []
        for i in range(int(nv.nvmlDeviceGetCount())):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            limit = _safe(nv.nvmlDeviceGetEnforcedPowerLimit, h)
            mem = _safe(nv.nvmlDeviceGetMemoryInfo, h)
            persistence = _safe(nv.nvmlDeviceGetPersistenceMode, h)
            mig = _safe(nv.nvmlDeviceGetMigMode, h)
            ecc = _safe(nv.nvmlDeviceGetEccMode, h)
            rows.append({
                "name": _text(_safe(nv.nvmlDeviceGetName, h)),
                "uuid": _text(_safe(nv.nvmlDeviceGetUUID, h)),
                "memory_total_bytes": int(mem.total) if mem is not None else None,
                "power_limit_w": limit / 1000.0 if limit is not None else None,
                "max_sm_clock_mhz": _safe(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM),
                "persistence_mode": None if persistence is None else bool(persistence),
                "mig_mode": None if mig is None else bool(mig[0]),
                "ecc_enabled": None if ecc is None else bool(ecc[0]),
            })
        driver = _text(_safe(nv.nvmlSystemGetDriverVersion))
        cuda = _safe(nv.nvmlSystemGetCudaDriverVersion)
    finally:
        _safe(nv.nvmlShutdown)
    cuda_str = f"{cuda // 1000}.{(cuda % 1000) // 10}" if isinstance(cuda, int) else None
    return _pick(rows, selection), driver, cuda_str


SMI_QUERY = ("name,uuid,memory.total,enforced.power.limit,clocks.max.sm,persistence_mode,"
             "mig.mode.current,ecc.mode.current,driver_version")


def _nvidia_smi(selection: list[int | str]
                ) -> tuple[list[dict[str, Any]], str | None, str | None] | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=15)
        header = subprocess.run([exe], capture_output=True, text=True, timeout=15).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    rows, driver = [], None
    for line in out.stdout.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 9:
            continue
        name, uuid, mem, power, clock, persistence, mig, ecc, driver = cells
        rows.append({
            "name": name, "uuid": uuid,
            "memory_total_bytes": _num(mem, int, 1024 * 1024),
            "power_limit_w": _num(power, float),
            "max_sm_clock_mhz": _num(clock, int),
            "persistence_mode": _flag(persistence),
            "mig_mode": _flag(mig),
            "ecc_enabled": _flag(ecc),
        })
    m = re.search(r"CUDA Version:\s*(\d+\.\d+)", header)
    return _pick(rows, selection), driver, m.group(1) if m else None


def _num(text: str, kind: type, scale: int = 1) -> Any:
    try:
        return kind(float(text) * scale) if kind is int else kind(text) * scale
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def _flag(text: str) -> bool | None:
    return {"enabled": True, "disabled": False}.get(text.strip().lower())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _safe(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:  # a field this GPU or driver does not support
        return None


_cpu_model = hostfacts.cpu_model
_mem_total = hostfacts.mem_total
