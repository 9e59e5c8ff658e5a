"""What a number was measured on: host, GPUs, driver, CUDA, packages, image."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata

from llem_schema import hostfacts
from llem_schema.result import EnvironmentInfo, GPUInfo, HostInfo

_PACKAGES = (
    "llenergymeasure",
    "torch",
    "transformers",
    "accelerate",
    "vllm",
    "tensorrt_llm",
    "nvidia-ml-py",
    "zeus",
    "codecarbon",
    "calflops",
    "pyarrow",
)


_cpu_model = hostfacts.cpu_model
_mem_total = hostfacts.mem_total


def host_info() -> HostInfo:
    return HostInfo(
        hostname=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count(),
        memory_total_bytes=_mem_total(),
        python=sys.version.split()[0],
    )


def package_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out.update(extra or {})
    return out


def _safe(fn, *args):
    try:
        return fn(*args)
    except Exception:
        return None


def gpu_info(device_indices: list[int]) -> tuple[list[GPUInfo], str | None, str | None]:
    """(GPUs, driver version, CUDA driver version) via NVML; empty when NVML is absent."""
    try:
        import pynvml

        from llem_harness.nvml_devices import nvml_handles

        pynvml.nvmlInit()
        handles = nvml_handles(device_indices)
    except Exception:
        return [], None, None
    nv = pynvml
    gpus = []
    for idx, h in zip(device_indices or [0], handles):
        mig = _safe(nv.nvmlDeviceGetMigMode, h)
        pcie_gen = _safe(nv.nvmlDeviceGetCurrPcieLinkGeneration, h)
        nvlinks = 0
        for link in range(18):
            state = _safe(nv.nvmlDeviceGetNvLinkState, h, link)
            if state is None:
                break
            nvlinks += int(state == 1)
        ecc = _safe(nv.nvmlDeviceGetEccMode, h)
        limit = _safe(nv.nvmlDeviceGetEnforcedPowerLimit, h)
        mem = _safe(nv.nvmlDeviceGetMemoryInfo, h)
        gpus.append(
            GPUInfo(
                index=idx,
                name=str(_safe(nv.nvmlDeviceGetName, h)),
                uuid=_safe(nv.nvmlDeviceGetUUID, h),
                memory_total_bytes=int(mem.total) if mem is not None else None,
                power_limit_w=limit / 1000.0 if limit is not None else None,
                sm_clock_mhz=_safe(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
                mem_clock_mhz=_safe(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
                max_sm_clock_mhz=_safe(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM),
                persistence_mode=(
                    None
                    if (p := _safe(nv.nvmlDeviceGetPersistenceMode, h)) is None
                    else bool(p)
                ),
                mig_mode=None if mig is None else bool(mig[0]),
                ecc_enabled=None if ecc is None else bool(ecc[0]),
                pcie_gen=pcie_gen,
                pcie_width=_safe(nv.nvmlDeviceGetCurrPcieLinkWidth, h),
                nvlink_active_links=nvlinks,
                temperature_c=_safe(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
            )
        )
    driver = _safe(nv.nvmlSystemGetDriverVersion)
    cuda = _safe(nv.nvmlSystemGetCudaDriverVersion)
    cuda_str = f"{cuda // 1000}.{(cuda % 1000) // 10}" if isinstance(cuda, int) else None
    return gpus, (str(driver) if driver is not None else None), cuda_str


def collect(
    device: str, device_indices: list[int], backend_versions: dict[str, str], runtime: str
) -> EnvironmentInfo:
    gpus, driver, cuda = gpu_info(device_indices) if device == "cuda" else ([], None, None)
    cuda_rt = None
    try:
        import torch

        cuda_rt = torch.version.cuda
    except ImportError:
        pass
    slurm = {
        k.lower(): v
        for k, v in os.environ.items()
        if k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME")
    }
    return EnvironmentInfo(
        host=host_info(),
        device="cuda" if device == "cuda" else "cpu",
        gpus=gpus,
        driver_version=driver,
        cuda_driver_version=cuda,
        cuda_runtime_version=cuda_rt,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        packages=package_versions(backend_versions),
        runtime=os.environ.get("LLEM_RUNTIME", runtime),
        image_ref=os.environ.get("LLEM_IMAGE_REF"),
        image_digest=os.environ.get("LLEM_IMAGE_DIGEST"),
        slurm=slurm,
    )
