"""Map the experiment's devices to NVML handles.

Inside a container or with CUDA_VISIBLE_DEVICES set, CUDA index 0 is not NVML index 0:
CUDA_VISIBLE_DEVICES may hold indices, GPU UUIDs (``GPU-…``) or MIG ids (``MIG-…``). We
resolve each visible entry to an NVML handle by the same rules CUDA uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class VisibleDevice:
    kind: str  # "index" | "uuid" | "mig"
    value: str


def parse_visible_devices(value: str | None) -> list[VisibleDevice] | None:
    """Parse CUDA_VISIBLE_DEVICES. None = unset (all devices). CUDA stops at the first
    invalid entry, and so do we."""
    if value is None:
        return None
    out: list[VisibleDevice] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            break
        if item.startswith("MIG-"):
            out.append(VisibleDevice("mig", item))
        elif item.startswith("GPU-"):
            out.append(VisibleDevice("uuid", item))
        elif item.isdigit():
            out.append(VisibleDevice("index", item))
        else:
            break
    return out


def nvml_handles(cuda_indices: list[int]) -> list[object]:
    """NVML handles for CUDA-visible device indices (``[]`` means device 0)."""
    import pynvml

    visible = parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
    indices = cuda_indices or [0]
    handles = []
    for i in indices:
        if visible is None:
            handles.append(pynvml.nvmlDeviceGetHandleByIndex(i))
            continue
        if i >= len(visible):
            raise IndexError(f"CUDA device {i} not in CUDA_VISIBLE_DEVICES={visible}")
        dev = visible[i]
        if dev.kind == "index":
            handles.append(pynvml.nvmlDeviceGetHandleByIndex(int(dev.value)))
        else:
            handles.append(pynvml.nvmlDeviceGetHandleByUUID(dev.value))
    return handles
