"""Model reuse across runs (``study.reuse_model``): which runs may share one loaded model,
and how a group of them is handed to one harness process.

Only generation-time parameters may differ inside a group: ``decoding.*`` (except
``decoding.seed``, which seeds the random init of ``builtin:`` models) and ``workload.*``.
Model, backend, backend section (dtype, attention, quantisation...), measurement and
runtime must be identical, so the loaded weights are exactly what a fresh load would give.
Groups are *consecutive* runs in study order, so ``order:`` keeps its meaning.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from llem.runtimes.child import SessionChild
from llem.runtimes.local import gpu_env
from llem_schema.config import ExperimentConfig

T = TypeVar("T")


def reuse_key(config: ExperimentConfig) -> str:
    """Equal keys = the same loaded model serves both configs."""
    data = config.model_dump(mode="json", exclude={"name", "workload", "extra"})
    seed = data["decoding"].get("seed")
    data["decoding"] = {"seed": seed}
    data["extra"] = config.extra  # extra may hold load-time kwargs: keep it in the key
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def group_consecutive(items: Sequence[T], keys: Sequence[str], limit: int = 0) -> list[list[T]]:
    """Split ``items`` into runs of equal consecutive keys (at most ``limit`` each if > 0)."""
    groups: list[list[T]] = []
    last = None
    for item, key in zip(items, keys, strict=False):
        if groups and key == last and (limit <= 0 or len(groups[-1]) < limit):
            groups[-1].append(item)
        else:
            groups.append([item])
        last = key
    return groups


@dataclass
class BatchOutcome:
    exit_code: int
    duration_s: float
    timed_out: bool = False
    interrupted: bool = False


class LocalBatchRunner:
    """``python -m llem_harness.multi RUN_DIR...`` as a child in its own session.

    The local runtime's counterpart for a group of runs; the container runtimes run one
    run per container (see docs/slurm.md, "model reuse").
    """

    name = "local"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._child = SessionChild()

    def run(
        self,
        run_dirs: Sequence[Path],
        gpus: Sequence[int | str],
        env: dict[str, str] | None = None,
        timeout_s: float | None = None,
        quiet: bool = False,
    ) -> BatchOutcome:
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.update(gpu_env(list(gpus)))
        full_env["LLEM_RUNTIME"] = "local"
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        cmd = [self.python, "-m", "llem_harness.multi", *map(str, run_dirs)]
        res = self._child.run(
            cmd, full_env, timeout_s * len(run_dirs) if timeout_s else None,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None,
        )
        return BatchOutcome(res.code, res.duration_s, res.timed_out, res.interrupted)

    def cleanup(self) -> None:
        self._child.stop()
