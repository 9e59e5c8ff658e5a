"""Cache of idle-power baselines, so a study measures each GPU's idle power once.

Idle power depends on the GPU (UUID), its power limit and — weakly — on temperature and
what is resident in memory. A study of many short runs would otherwise spend
``baseline_seconds`` per run; with ``LLEM_BASELINE_CACHE=<dir>`` the first run writes
``<dir>/<uuid>_<limit>W.json`` and later runs reuse it while it is younger than
``LLEM_BASELINE_MAX_AGE_S`` (default 3600 s). The result says whether the value was cached.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

ENV_DIR = "LLEM_BASELINE_CACHE"
ENV_MAX_AGE = "LLEM_BASELINE_MAX_AGE_S"
DEFAULT_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class GpuKey:
    uuid: str
    power_limit_w: float | None

    def filename(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.uuid)
        limit = "nolimit" if self.power_limit_w is None else f"{self.power_limit_w:.0f}W"
        return f"{safe}_{limit}.json"


def cache_dir() -> Path | None:
    d = os.environ.get(ENV_DIR)
    return Path(d) if d else None


def max_age_s() -> float:
    try:
        return float(os.environ.get(ENV_MAX_AGE, DEFAULT_MAX_AGE_S))
    except ValueError:
        return DEFAULT_MAX_AGE_S


def _key_path(keys: list[GpuKey], root: Path) -> Path:
    if len(keys) == 1:
        return root / keys[0].filename()
    return root / ("+".join(k.filename()[:-5] for k in keys) + ".json")


def load(keys: list[GpuKey], root: Path | None = None, now: float | None = None) -> float | None:
    """Cached idle power (W, summed over the GPUs) if fresh, else None."""
    root = root or cache_dir()
    if root is None or not keys:
        return None
    path = _key_path(keys, root)
    try:
        data = json.loads(path.read_text("utf-8"))
        age = (now if now is not None else time.time()) - float(data["measured_at"])
        if 0 <= age <= max_age_s():
            return float(data["idle_power_w"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def store(keys: list[GpuKey], idle_power_w: float, seconds: float, root: Path | None = None,
          now: float | None = None) -> Path | None:
    root = root or cache_dir()
    if root is None or not keys:
        return None
    from llem_schema.atomic import atomic_write_json

    root.mkdir(parents=True, exist_ok=True)
    path = _key_path(keys, root)
    atomic_write_json(
        path,
        {
            "idle_power_w": idle_power_w,
            "baseline_seconds": seconds,
            "measured_at": now if now is not None else time.time(),
            "gpus": [k.__dict__ for k in keys],
        },
    )
    return path


def gpu_keys(device_indices: list[int]) -> list[GpuKey]:
    """Keys for the experiment's GPUs via NVML; [] when NVML is not usable."""
    try:
        import pynvml

        from llem_harness.nvml_devices import nvml_handles

        pynvml.nvmlInit()
        keys = []
        for h in nvml_handles(device_indices):
            uuid = pynvml.nvmlDeviceGetUUID(h)
            uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
            try:
                limit = pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0
            except Exception:
                limit = None
            keys.append(GpuKey(uuid, limit))
        return keys
    except Exception:
        return []
