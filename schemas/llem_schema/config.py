"""ExperimentConfig: one fully resolved experiment, the unit both sides agree on.

Backend-specific sections live in :mod:`llem_schema.backends` so each engine's options sit
in one file beside its mapping code; this module only composes them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llem_schema.backends import PyTorchConfig, TensorRTConfig, VLLMConfig
from llem_schema.base import StrictModel

Backend = Literal["pytorch", "vllm", "tensorrt"]
BACKENDS: tuple[str, ...] = ("pytorch", "vllm", "tensorrt")
DEFAULT_MODEL = "builtin:tiny-llama"


class DecodingConfig(StrictModel):
    """How tokens are chosen. Means the same thing on every backend (see docs/parameters.md)."""

    strategy: Literal["greedy", "sampling", "beam"] = "greedy"
    temperature: float = Field(1.0, ge=0.0, description="Only used with strategy=sampling.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k.")
    min_p: float = Field(0.0, ge=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    num_beams: int = Field(1, ge=1, description="Only used with strategy=beam.")
    max_new_tokens: int = Field(32, ge=1)
    min_new_tokens: int = Field(0, ge=0)
    ignore_eos: bool = Field(
        True,
        description="Generate exactly max_new_tokens so runs compare at equal output length.",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> DecodingConfig:
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError("decoding.min_new_tokens must be <= decoding.max_new_tokens")
        if self.strategy == "beam" and self.num_beams < 2:
            raise ValueError("decoding.num_beams must be >= 2 when strategy is 'beam'")
        if self.strategy != "beam" and self.num_beams != 1:
            raise ValueError("decoding.num_beams > 1 requires strategy: beam")
        return self


class TrafficConfig(StrictModel):
    """Arrival process of requests: all at once (offline) or Poisson (MLPerf server-style)."""

    mode: Literal["offline", "poisson"] = "offline"
    rate: float | None = Field(None, gt=0.0, description="Requests per second for poisson.")
    seed: int = 0

    @model_validator(mode="after")
    def _rate_for_poisson(self) -> TrafficConfig:
        if self.mode == "poisson" and self.rate is None:
            raise ValueError("workload.traffic.rate is required when mode is 'poisson'")
        return self


class WorkloadConfig(StrictModel):
    """What is sent to the model."""

    dataset: str = Field(
        "builtin:prompts",
        description="builtin:prompts; synthetic (seeded random token ids of exactly input_len "
        "tokens, no padding: the workload peers such as optimum-benchmark or a bare loop can "
        "run identically); or a path to a .txt (one prompt per line) or .jsonl file with a "
        "'prompt' field.",
    )
    input_len: int = Field(
        128, ge=1, description="dataset synthetic: tokens per prompt (exact, no padding)."
    )
    seed: int = Field(0, description="Seed of the synthetic token ids / dataset sampling.")
    dataset_column: str | None = Field(
        None, description="The text column of a hub or table dataset (default: prompt, text, "
        "question, instruction, input or content, or the alias's own format).")
    dataset_format: Literal["alpaca", "sharegpt", "gsm8k", "mmlu", "aienergyscore"] | None = Field(
        None, description="Read a local file's rows in one of the aliases' formats.")
    dataset_split: str | None = Field(None, description="Hub split (alias default, else train).")
    dataset_config: str | None = Field(None, description="Hub dataset configuration (subset).")
    shuffle: bool = Field(False, description="Shuffle the prompts with workload.seed.")
    min_chars: int | None = Field(None, ge=0, description="Drop prompts shorter than this.")
    max_chars: int | None = Field(None, ge=1, description="Drop prompts longer than this.")
    num_prompts: int = Field(16, ge=1)
    batch_size: int = Field(4, ge=1)
    max_input_tokens: int = Field(128, ge=1)
    batching: Literal["static", "sorted", "dynamic"] = Field(
        "static",
        description="static: fixed batches in dataset order; sorted: batches of similar length; "
        "dynamic: fill batches up to token_budget.",
    )
    token_budget: int | None = Field(None, ge=1, description="Tokens per batch for dynamic.")
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)

    @model_validator(mode="after")
    def _budget(self) -> WorkloadConfig:
        if self.batching == "dynamic" and self.token_budget is None:
            raise ValueError("workload.token_budget is required when batching is 'dynamic'")
        if self.dataset == "synthetic" and self.input_len > self.max_input_tokens:
            raise ValueError(
                f"workload.input_len ({self.input_len}) must be <= workload.max_input_tokens "
                f"({self.max_input_tokens}); raise max_input_tokens"
            )
        return self


EnergyBackendName = Literal["auto", "zeus", "nvml", "codecarbon", "rapl", "none"]


class MeasurementConfig(StrictModel):
    """How the harness measures. Defaults are what a careful engineer would pick."""

    energy_backend: EnergyBackendName = "auto"
    sample_interval_ms: int = Field(100, ge=10, le=10_000)
    baseline_seconds: float = Field(10.0, ge=0.0, description="Idle power window; 0 disables.")
    warmup_min_runs: int = Field(2, ge=0)
    warmup_max_runs: int = Field(10, ge=0)
    warmup_cv_threshold: float = Field(0.05, gt=0.0)
    min_window_seconds: float = Field(
        1.0,
        ge=0.0,
        description="Repeat the measured workload until the energy window spans this long "
        "(the NVML counter refreshes every ~100 ms).",
    )
    prefill_split: bool = True
    flops: bool = True
    timeseries: bool = True
    carbon_intensity_g_per_kwh: float | None = Field(
        None, ge=0.0, description="Grid carbon intensity for CO2 figures (g CO2e per kWh)."
    )
    carbon_region: str | None = Field(
        None,
        description="Look the intensity up offline in CodeCarbon's packaged data: an ISO "
        "3166 alpha-3 country code (FRA, USA, ...) or a cloud region CodeCarbon lists "
        "(gcp:europe-west1, or just the region name; CodeCarbon 3.x lists Google Cloud's).",
    )

    @model_validator(mode="after")
    def _warmup(self) -> MeasurementConfig:
        if self.warmup_min_runs > self.warmup_max_runs:
            raise ValueError("measurement.warmup_min_runs must be <= measurement.warmup_max_runs")
        return self


class RuntimeConfig(StrictModel):
    """Where one experiment executes."""

    runtime: Literal["auto", "docker", "podman", "local"] = "auto"
    gpus: list[int | str] = Field(
        default_factory=list,
        description="GPU indices, UUIDs or MIG ids; empty = the first visible GPU (or CPU).",
    )
    image: str | None = Field(None, description="Explicit image ref or ref@sha256:digest.")
    registry: str | None = None
    pull_policy: Literal["missing", "always", "never"] = "missing"
    timeout_seconds: float | None = Field(None, gt=0.0)
    shm_size: str = "8g"


class ExperimentConfig(StrictModel):
    """One fully resolved experiment."""

    name: str | None = None
    model: str = DEFAULT_MODEL
    backend: Backend = "pytorch"
    pytorch: PyTorchConfig = Field(default_factory=PyTorchConfig)
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)
    tensorrt: TensorRTConfig = Field(default_factory=TensorRTConfig)
    decoding: DecodingConfig = Field(default_factory=DecodingConfig)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    measurement: MeasurementConfig = Field(default_factory=MeasurementConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Escape hatch: keys forwarded verbatim to the backend (e.g. generate kwargs).",
    )

    @field_validator("model")
    @classmethod
    def _model_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("model must not be empty")
        return v

    def config_hash(self) -> str:
        """Stable hash of everything that changes what is measured (name excluded)."""
        data = self.model_dump(mode="json", exclude={"name"})
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def backend_section(self) -> StrictModel:
        return getattr(self, self.backend)
