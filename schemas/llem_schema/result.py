"""ExperimentResult: what the harness writes to ``result.json``.

Every metric group is a :class:`MeasuredGroup`: a metric that was not measured is ``null``
with a reason. ``schema_version`` lets readers migrate rather than guess formats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from llem_schema.base import MeasuredGroup, StrictModel
from llem_schema.config import ExperimentConfig
from llem_schema.version import SCHEMA_VERSION, VERSION_PATTERN


class GPUInfo(StrictModel):
    index: int
    name: str
    uuid: str | None = None
    memory_total_bytes: int | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    max_sm_clock_mhz: int | None = None
    persistence_mode: bool | None = None
    mig_mode: bool | None = None
    mig_device: str | None = None
    ecc_enabled: bool | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    nvlink_active_links: int | None = None
    temperature_c: float | None = None


class HostInfo(StrictModel):
    hostname: str
    os: str
    cpu_model: str | None = None
    cpu_count: int | None = None
    memory_total_bytes: int | None = None
    python: str


class EnvironmentInfo(StrictModel):
    """Everything needed to say on what a number was measured."""

    host: HostInfo
    device: Literal["cuda", "cpu"]
    gpus: list[GPUInfo] = Field(default_factory=list)
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    cuda_runtime_version: str | None = None
    cuda_visible_devices: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    runtime: str = "local"
    image_ref: str | None = None
    image_digest: str | None = None
    slurm: dict[str, str] = Field(
        default_factory=dict, description="Job id, array index, node name when run under Slurm."
    )


def _absent_is_older_harness(data: Any, fields: tuple[str, ...]) -> Any:
    """Fields added in a minor version: a result written before them simply lacks the key;
    that is "not recorded", not a contract violation, so it gets a reason automatically."""
    if isinstance(data, dict):
        missing = [f for f in fields if f not in data]
        if missing:
            data = dict(data)
            reasons = dict(data.get("null_reasons") or {})
            for f in missing:
                reasons.setdefault(f, "not recorded by the harness that wrote this result")
            data["null_reasons"] = reasons
    return data


class EnergyMetrics(MeasuredGroup):
    """Energy of the measured window (prefill + decode of the whole workload)."""

    @model_validator(mode="before")
    @classmethod
    def _added_fields(cls, data: Any) -> Any:
        return _absent_is_older_harness(
            data, ("baseline_cached", "timeseries_j", "timeseries_power_method")
        )

    total_j: float | None = None
    baseline_power_w: float | None = None
    adjusted_j: float | None = Field(None, description="total_j - baseline_power_w * duration_s")
    duration_s: float | None = None
    per_output_token_j: float | None = None
    per_token_j: float | None = Field(None, description="Per input+output token.")
    per_request_j: float | None = None
    mean_power_w: float | None = None
    peak_power_w: float | None = None
    per_gpu_j: list[float] | None = None
    method: str | None = Field(
        None, description="zeus | nvml | codecarbon | rapl | nvml-power-integration"
    )
    method_version: str | None = None
    gpu_indices: list[int] | None = Field(
        None, description="CUDA device indices as the harness saw them (after "
        "CUDA_VISIBLE_DEVICES / container remapping); environment.gpus names each by UUID "
        "and environment.cuda_visible_devices records the assignment.")
    baseline_cached: bool | None = Field(
        None, description="True when baseline_power_w came from LLEM_BASELINE_CACHE."
    )
    timeseries_j: float | None = Field(
        None,
        description="Integral of the power time series over the measured window: a "
        "cross-check of total_j from an independent reading (sampled power, not the counter).",
    )
    timeseries_power_method: str | None = Field(
        None, description="instant | average: which NVML power reading the time series holds."
    )


class CarbonMetrics(MeasuredGroup):
    """CO2e of the measured window from a grid carbon intensity (config or offline lookup)."""

    intensity_g_per_kwh: float | None = None
    source: str | None = Field(None, description="config, or codecarbon:<file>:<key> looked up.")
    emissions_g: float | None = Field(None, description="energy.total_j as g CO2e.")
    emissions_adjusted_g: float | None = Field(None, description="energy.adjusted_j as g CO2e.")
    per_output_token_g: float | None = None


class HostEnergyMetrics(MeasuredGroup):
    """CPU package and DRAM energy over the measured window, apart from the GPU energy."""

    cpu_j: float | None = Field(None, description="Sum over CPU packages (RAPL package zones).")
    dram_j: float | None = Field(None, description="Sum over the packages' dram zones.")
    method: str | None = Field(None, description="rapl-powercap")
    cpu_zones: int | None = None


class PhaseMetrics(MeasuredGroup):
    """One phase (prefill or decode) measured in its own energy window."""

    tokens: int | None = None
    time_s: float | None = None
    energy_j: float | None = None
    tokens_per_s: float | None = None
    energy_per_token_j: float | None = None
    mean_power_w: float | None = None


class LatencyStats(StrictModel):
    """Distribution of one latency in seconds."""

    n: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float


class LatencyMetrics(MeasuredGroup):
    ttft: LatencyStats | None = Field(None, description="Time to first token per request.")
    itl: LatencyStats | None = Field(None, description="Inter-token latency.")
    e2e: LatencyStats | None = Field(None, description="End-to-end latency per batch.")


class ThroughputMetrics(MeasuredGroup):
    num_requests: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    wall_time_s: float | None = None
    output_tokens_per_s: float | None = None
    total_tokens_per_s: float | None = None
    requests_per_s: float | None = None
    requested_rate: float | None = None
    achieved_rate: float | None = None


#: "profiler" (torch.profiler with_flops) is what results before 1.2 name; 1.2 counts with
#: torch.utils.flop_counter.FlopCounterMode ("flop_counter"). "analytic": engine backends
#: (vLLM, TensorRT-LLM), whose model runs outside the harness process: a formula over the
#: config.json shape and the safetensors parameter count (grouped-query k/v, QK^T + AV).
FlopsMethod = Literal["flop_counter", "profiler", "calflops", "architecture", "params",
                      "analytic"]


class FlopsMetrics(MeasuredGroup):
    @model_validator(mode="before")
    @classmethod
    def _added_fields(cls, data: Any) -> Any:
        return _absent_is_older_harness(data, ("per_input_token_prefill", "per_token_decode"))

    total: float | None = None
    per_output_token: float | None = None
    prefill: float | None = None
    decode: float | None = None
    method: FlopsMethod | None = None
    per_input_token_prefill: float | None = None
    per_token_decode: float | None = None
    fallbacks: list[str] = Field(
        default_factory=list, description="Why methods earlier in the chain were not used."
    )


class MemoryMetrics(MeasuredGroup):
    device: Literal["cuda", "cpu"] | None = None
    peak_allocated_bytes: int | None = None
    peak_reserved_bytes: int | None = None
    model_bytes: int | None = None
    host_peak_rss_bytes: int | None = None


class WarmupInfo(StrictModel):
    runs: int
    converged: bool
    final_cv: float | None = None
    first_run_s: float | None = Field(
        None, description="First warmup run; includes torch.compile / graph capture."
    )
    steady_run_s: float | None = Field(None, description="Median of the last warmup runs.")


class SetupInfo(StrictModel):
    """Work done before the measured window, reported apart from it."""

    load_time_s: float
    compile_time_s: float | None = Field(
        None, description="first warmup run minus a steady one, when compiling"
    )
    num_parameters: int | None = None
    dtype: str | None = None
    attn_implementation: str | None = None
    device: Literal["cuda", "cpu"]
    device_indices: list[int] = Field(default_factory=list)
    measured_passes: int = Field(1, description="Workload passes in the measured window.")
    prefill_passes: int = Field(0, description="Passes in the prefill-only window.")
    notes: list[str] = Field(default_factory=list)


class PowerPhaseSummary(StrictModel):
    phase: str
    samples: int
    mean_w: float
    peak_w: float
    mean_util_pct: float | None = Field(
        None, description="Mean GPU utilisation (NVML) over the phase's samples."
    )


class WindowRecord(StrictModel):
    """One energy window, anchored to wall-clock and monotonic time so an external meter
    (wall-power meter, PDU log, another NVML reader) can be read over exactly this span."""

    name: Literal["baseline", "measured", "prefill"]
    start_unix_ns: int
    end_unix_ns: int
    start_monotonic_s: float
    end_monotonic_s: float
    duration_s: float
    energy_j: float | None = Field(None, description="The energy source's joules (summed GPUs).")
    passes: int = Field(0, description="Workload passes inside the window.")
    gpu_util_mean_pct: float | None = Field(
        None, description="Mean GPU utilisation of the power trace's samples in the window."
    )
    temp_start_c: float | None = Field(None, description="GPU temperature as the window began.")
    temp_end_c: float | None = Field(None, description="GPU temperature as the window ended.")
    throttled: list[str] = Field(
        default_factory=list,
        description="Slowdown reasons NVML reported inside the window: power_cap, thermal, "
        "hw_slowdown (empty: ran unthrottled, or no trace).",
    )


class ExperimentResult(StrictModel):
    """The result of one run (one experiment × one cycle)."""

    schema_version: str = Field(SCHEMA_VERSION, pattern=VERSION_PATTERN)
    status: Literal["ok", "failed"] = "ok"
    experiment_id: str
    study_id: str | None = None
    run_id: str
    cycle: int = 0
    started_at: datetime
    finished_at: datetime
    config: ExperimentConfig
    config_hash: str
    config_provenance: dict[str, str] = Field(
        default_factory=dict,
        description="Where each config value came from (default, preset:NAME, file, cli, sweep).",
    )
    backend: str
    model: str
    environment: EnvironmentInfo
    energy: EnergyMetrics
    prefill: PhaseMetrics
    decode: PhaseMetrics
    latency: LatencyMetrics
    throughput: ThroughputMetrics
    flops: FlopsMetrics
    carbon: CarbonMetrics | None = Field(None, description="Absent in results before 1.1.")
    host_energy: HostEnergyMetrics | None = Field(
        None, description="CPU/DRAM energy of the measured window (absent before 1.1).")
    memory: MemoryMetrics
    warmup: WarmupInfo
    setup: SetupInfo
    power_phases: list[PowerPhaseSummary] = Field(default_factory=list)
    windows: list[WindowRecord] = Field(
        default_factory=list,
        description="Every energy window with Unix-ns and monotonic edges (schema 1.1+).",
    )
    timeseries_file: str | None = None
    reused_model: bool = False
    measurement_methodology: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
