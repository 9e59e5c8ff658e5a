"""What the reference loops share (no llem code): the GPU's energy counter, read by the loops
themselves, and their line-JSON worker protocol."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


class Counter:
    """``nvmlDeviceGetTotalEnergyConsumption`` of GPU 0 (mJ), read at segment edges."""

    def __init__(self, index: int = 0) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nv = pynvml
        self._h = pynvml.nvmlDeviceGetHandleByIndex(index)

    def read_j(self) -> float:
        return self._nv.nvmlDeviceGetTotalEnergyConsumption(self._h) / 1000.0


def serve(segment: Callable[[int, float], dict[str, Any]]) -> None:
    """The worker protocol of the reference loops: one JSON request a line on stdin
    (``{"batch": B, "seconds": S}`` or ``{"quit": true}``), one JSON answer a line."""
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("quit"):
            break
        print(json.dumps(segment(int(req["batch"]), float(req["seconds"]))), flush=True)
