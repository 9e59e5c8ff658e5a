"""ExperimentConfig: one fully resolved experiment, the unit both sides agree on.

Backend-specific sections live in :mod:`llem_schema.backends` so each engine's options sit
in one file beside its mapping code; this module only composes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from llem_schema.backends import PyTorchConfig, TensorRTConfig, VLLMConfig
from llem_schema.base import ConfigModel

Backend = Literal["pytorch", "vllm", "tensorrt"]
BACKENDS: tuple[str, ...] = ("pytorch", "vllm", "tensorrt")
DEFAULT_MODEL = "builtin:tiny-llama"
#: upper bounds that keep a typo (``num_prompts: 1.0e+9``) from becoming a run that fills the
#: memory or never ends: prompts per run, tokens an engine indexes (int32), seeds every
#: engine accepts (numpy's, which vLLM seeds, stop at 2**32 - 1)
MAX_PROMPTS = 1_000_000
MAX_TOKENS = 2**31 - 1
MAX_SEED = 2**32 - 1
SEED_RANGE = {"ge": 0, "le": MAX_SEED}
#: measurement.carbon_region: an ISO 3166 alpha-3 code, or [provider:]cloud-region
CARBON_REGION = re.compile(r"[A-Za-z]{3}|([a-z]+:)?[a-z0-9]+(-[a-z0-9]+)*")


class DecodingConfig(ConfigModel):
    """How tokens are chosen. Means the same thing on every backend (see docs/parameters.md)."""

    strategy: Literal["greedy", "sampling", "beam"] = "greedy"
    temperature: float = Field(1.0, ge=0.0, description="Only used with strategy=sampling.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k.")
    min_p: float = Field(0.0, ge=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    num_beams: int = Field(1, ge=1, description="Only used with strategy=beam.")
    max_new_tokens: int = Field(32, ge=1, le=MAX_TOKENS)
    min_new_tokens: int = Field(0, ge=0, le=MAX_TOKENS)
    ignore_eos: bool = Field(
        True,
        description="Generate exactly max_new_tokens so runs compare at equal output length.",
    )
    seed: int = Field(0, **SEED_RANGE)

    @model_validator(mode="after")
    def _consistent(self) -> DecodingConfig:
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError("decoding.min_new_tokens must be <= decoding.max_new_tokens")
        if self.strategy == "beam" and self.num_beams < 2:
            raise ValueError("decoding.num_beams must be >= 2 when strategy is 'beam'")
        if self.strategy != "beam" and self.num_beams != 1:
            raise ValueError("decoding.num_beams > 1 requires strategy: beam")
        return self

    @field_validator("temperature")
    @classmethod
    def _temperature_needs_sampling(cls, v: float, info: ValidationInfo) -> float:
        """Greedy and beam decoding never sample: every backend drops the temperature (vLLM
        runs greedy at 0.0), so a result would record a value that was not used. Refused
        like num_beams without beam. 1.0 (the default) and 0.0 (greedy) claim nothing."""
        strategy = info.data.get("strategy")
        if strategy is not None and strategy != "sampling" and v not in (0.0, 1.0):
            raise ValueError(f"has no effect with {strategy} decoding, which never samples; "
                             "set decoding.strategy: sampling, or leave decoding.temperature "
                             "unset")
        return v


class TrafficConfig(ConfigModel):
    """Arrival process of requests: all at once (offline) or Poisson (MLPerf server-style)."""

    mode: Literal["offline", "poisson"] = "offline"
    rate: float | None = Field(None, gt=0.0, description="Requests per second for poisson.")
    seed: int = Field(0, **SEED_RANGE)

    @model_validator(mode="after")
    def _rate_for_poisson(self) -> TrafficConfig:
        if self.mode == "poisson" and self.rate is None:
            raise ValueError("workload.traffic.rate is required when mode is 'poisson'")
        return self


class WorkloadConfig(ConfigModel):
    """What is sent to the model."""

    dataset: str = Field(
        "builtin:prompts",
        description="builtin:prompts; synthetic (seeded random token ids of exactly input_len "
        "tokens, no padding: the workload peers such as optimum-benchmark or a bare loop can "
        "run identically); or a path to a .txt (one prompt per line) or .jsonl file with a "
        "'prompt' field.",
    )
    input_len: int = Field(
        128, ge=1, le=MAX_TOKENS,
        description="dataset synthetic: tokens per prompt (exact, no padding).",
    )
    seed: int = Field(0, **SEED_RANGE,
                      description="Seed of the synthetic token ids / dataset sampling.")
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
    num_prompts: int = Field(16, ge=1, le=MAX_PROMPTS)
    batch_size: int = Field(4, ge=1, le=MAX_PROMPTS)
    max_input_tokens: int = Field(128, ge=1, le=MAX_TOKENS)
    batching: Literal["static", "sorted", "dynamic"] = Field(
        "static",
        description="static: fixed batches in dataset order; sorted: batches of similar length; "
        "dynamic: fill batches up to token_budget.",
    )
    token_budget: int | None = Field(
        None, ge=1, le=MAX_TOKENS, description="Tokens per batch for dynamic.")
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)

    @field_validator("dataset")
    @classmethod
    def _dataset_named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name a dataset: builtin:prompts, synthetic, a file or a hub id")
        return v

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


class MeasurementConfig(ConfigModel):
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

    @field_validator("carbon_region")
    @classmethod
    def _region_format(cls, v: str | None) -> str | None:
        """Only the shape: whether CodeCarbon lists the region is known where its data is,
        in the harness (an unknown one leaves CO2e null with the reason)."""
        if v is not None and not CARBON_REGION.fullmatch(v):
            raise ValueError("expected an ISO 3166 alpha-3 country code (FRA) or a cloud "
                             "region such as gcp:europe-west1 or europe-west1")
        return v

    @model_validator(mode="after")
    def _warmup(self) -> MeasurementConfig:
        if self.warmup_min_runs > self.warmup_max_runs:
            raise ValueError("measurement.warmup_min_runs must be <= measurement.warmup_max_runs")
        return self


class RuntimeConfig(ConfigModel):
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

    @field_validator("gpus")
    @classmethod
    def _gpu_ids(cls, v: list[int | str]) -> list[int | str]:
        return check_gpu_ids(v)


def check_gpu_ids(gpus: list[int | str]) -> list[int | str]:
    """GPU indices are >= 0 and ids are words: ``--gpus 0,,1`` or ``-1`` is a typo that would
    otherwise reach ``CUDA_VISIBLE_DEVICES`` and silently select no GPU (or all)."""
    for g in gpus:
        if isinstance(g, int) and g < 0:
            raise ValueError(f"GPU index {g} is negative; indices start at 0")
        if isinstance(g, str) and (not g.strip() or any(c in g for c in " ,\t")):
            raise ValueError(f"{g!r} is not a GPU index, UUID or MIG id")
    return gpus


class ExperimentConfig(ConfigModel):
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

    def backend_section(self) -> ConfigModel:
        return getattr(self, self.backend)
