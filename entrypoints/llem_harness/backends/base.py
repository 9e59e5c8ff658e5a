"""Inference backend interface inside the harness.

The harness owns measurement (windows, sampler, warmup, statistics); a backend only knows
how to load a model and run batches. That split is what lets every backend be measured by
exactly the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from llem_schema.config import ExperimentConfig


class BackendNotInstalled(RuntimeError):
    """The backend's engine package is not importable here."""


class ModelNotFound(RuntimeError):
    """The model path / cache entry does not exist."""


@dataclass
class Request:
    """One prompt, tokenised by the backend's tokenizer."""

    index: int
    #: the text, or token ids for a synthetic workload
    prompt: str | list[int]
    input_tokens: int


@dataclass
class Batch:
    requests: list[Request]
    #: backend-private payload (tokenised tensors etc.)
    payload: Any = None

    @property
    def input_tokens(self) -> int:
        return sum(r.input_tokens for r in self.requests)


@dataclass
class BatchOutput:
    """What one generate call produced, with the timings the backend could observe."""

    input_tokens: int
    output_tokens: int
    per_request_output_tokens: list[int]
    e2e_s: float
    #: time to first token per request (None when the engine cannot observe it)
    ttft_s: list[float] | None = None
    #: every inter-token gap observed (seconds)
    itl_s: list[float] | None = None
    #: wall time of each decode step (for the batch); used for ITL when per-request is absent
    step_times_s: list[float] | None = None


@dataclass
class LoadInfo:
    load_time_s: float
    num_parameters: int | None = None
    model_bytes: int | None = None
    #: architecture hints for the FLOPs formula (hidden size, layers, heads, vocab, ...)
    architecture: dict[str, Any] = field(default_factory=dict)
    dtype: str | None = None
    attn_implementation: str | None = None
    notes: list[str] = field(default_factory=list)


class InferenceBackend(ABC):
    name: str = "abstract"

    def __init__(self, config: ExperimentConfig, device: str, device_indices: list[int]) -> None:
        self.config = config
        self.device = device
        self.device_indices = device_indices

    @classmethod
    def version(cls) -> dict[str, str]:
        """Versions of the engine packages, recorded in the environment block."""
        return {}

    @abstractmethod
    def load(self) -> LoadInfo:
        """Load weights and tokenizer; compile/build if configured (timed apart)."""

    def token_space(self) -> tuple[int, set[int]]:
        """(vocabulary size, special token ids) for synthetic prompts; after ``load``."""
        raise NotImplementedError(f"{self.name} backend cannot run a synthetic workload")

    @abstractmethod
    def make_batches(self, prompts: list[Any]) -> list[Batch]:
        """Tokenise (text) or take (token-id lists) prompts and group them according to
        ``workload.batching``."""

    @abstractmethod
    def generate(self, batch: Batch) -> BatchOutput:
        """Full generation for one batch (prefill + decode)."""

    def schedules_arrivals(self) -> bool:
        """True when ``generate`` itself submits each request at its arrival time (an
        engine with continuous batching under Poisson traffic): the pass must then neither
        hold the batch until its last arrival nor add that wait to TTFT, or every request
        would wait for its arrival twice (seen on the H100: TTFT p50 1.7 s at 20 req/s)."""
        return False

    @abstractmethod
    def prefill(self, batch: Batch) -> int:
        """Prefill-only forward over the batch; returns the tokens processed."""

    def synchronize(self) -> None:
        """Wait for queued device work (CUDA) so timestamps mean something."""

    def reset_peak_memory(self) -> None:
        """Reset peak-memory counters before the measured window."""

    def peak_memory(self) -> tuple[int | None, int | None]:
        """(peak allocated, peak reserved) bytes on the device, if known."""
        return None, None

    def unload(self) -> None:
        """Free the model."""
