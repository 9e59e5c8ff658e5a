"""What one run carries from phase to phase."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llem_harness.backends.base import Batch, BatchOutput, InferenceBackend, LoadInfo
from llem_harness.energy.base import EnergySource, WindowReading
from llem_harness.sampler import PowerSampler
from llem_schema.config import ExperimentConfig
from llem_schema.result import WarmupInfo
from llem_schema.runspec import RunSpec


@dataclass
class Baseline:
    watts: float | None
    reason: str | None
    cached: bool | None
    reading: WindowReading | None = None


@dataclass
class Measured:
    """The measured window: every pass's outputs and latencies, one energy reading."""

    reading: WindowReading
    outputs: list[BatchOutput]
    ttft_s: list[float]
    e2e_s: list[float]
    passes: int
    peak_allocated: int | None
    peak_reserved: int | None


@dataclass
class Prefill:
    reading: WindowReading
    passes: int


@dataclass
class RunContext:
    spec: RunSpec
    run_dir: Path
    started: datetime
    device: str
    indices: list[int]
    backend_cls: Any
    backend: InferenceBackend
    info: LoadInfo
    prompts: list[Any]
    batches: list[Batch]
    arrivals: list[float] | None
    reused_model: bool = False
    source: EnergySource | None = None
    energy_reason: str | None = None
    sampler: PowerSampler | None = None
    t_origin: float = 0.0
    warnings: list[str] = field(default_factory=list)
    baseline: Baseline | None = None
    warm: WarmupInfo | None = None
    measured: Measured | None = None
    prefill: Prefill | None = None
    flops: tuple[Any, list[str]] = (None, [])
    host_energy: Any = None
    #: every energy window, in order, for result.windows (alignment with external meters)
    windows: list[tuple[str, WindowReading, int]] = field(default_factory=list)

    @property
    def cfg(self) -> ExperimentConfig:
        return self.spec.config

    @property
    def gpu_indices(self) -> list[int]:
        return self.indices if self.device == "cuda" else []

    def phase(self, name: str) -> None:
        """Label the power trace's following samples."""
        if self.sampler:
            self.sampler.set_phase(name)
