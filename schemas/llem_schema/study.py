"""StudyConfig: a base experiment, a sweep grid over dotted paths, cycles and ordering."""

from __future__ import annotations

import copy
import itertools
import json
import random
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llem_schema.base import ConfigModel
from llem_schema.config import ExperimentConfig, check_gpu_ids

#: The keys of the launcher's metric registry (``llem.results.metrics.METRICS``): the contract
#: cannot import the launcher, so the names are repeated here and a test keeps them equal.
TARGET_METRICS = (
    "energy_per_token", "tokens_per_s", "ttft_p50", "itl_p50", "energy_per_pass",
    "total_energy", "energy_per_token_adjusted", "tokens_per_joule",
    "prefill_energy_per_token", "decode_energy_per_token", "prefill_energy_per_token_adjusted",
    "decode_energy_per_token_adjusted", "flops_per_joule",
)


class TargetCI(ConfigModel):
    """Add cycles until the CI of one metric is narrow enough (``study.target_ci``).

    After the planned ``cycles``, every configuration whose CI of ``metric`` (the one
    ``llem results show`` reports) has a relative half-width ``(high - low) / 2 / |mean|``
    above ``rel_half_width`` gets one more cycle, round after round, until all meet it or
    have run ``max_cycles``. A CI needs 5 valid cycles, so fewer planned cycles are topped
    up first.
    """

    metric: str = Field("energy_per_token", description="A metric key of `llem results show`: "
                        + ", ".join(TARGET_METRICS) + ".",
                        json_schema_extra={"enum": list(TARGET_METRICS)})
    rel_half_width: float = Field(
        0.05, gt=0.0, description="Target (CI high - low) / 2 / |mean|; 0.05 = +-5% of the mean.")
    max_cycles: int = Field(20, ge=1, description="Most cycles per configuration, planned "
                            "cycles included.")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in TARGET_METRICS:
            from llem_schema.errors import did_you_mean

            raise ValueError(f"unknown metric '{v}'{did_you_mean(v, list(TARGET_METRICS))}; "
                             f"choose from {', '.join(TARGET_METRICS)}")
        return v


class StudyExecution(ConfigModel):
    """How the runs of a study are repeated and ordered."""

    cycles: int = Field(1, ge=1, description="Repetitions of every experiment (>= 5 for CIs).")
    order: Literal["grouped", "interleaved", "shuffled"] = Field(
        "interleaved",
        description="grouped: all cycles of one experiment together; interleaved: cycle-major "
        "(cancels thermal drift); shuffled: seeded random order.",
    )
    seed: int = 0
    cooldown_seconds: float = Field(0.0, ge=0.0)
    cooldown_max_temp_c: float | None = Field(
        None, gt=0.0, description="Also wait until the GPU is below this temperature."
    )
    max_failures: int | None = Field(None, ge=1, description="Stop the study after this many.")
    max_retries: int = Field(1, ge=0)
    gpus: list[int | str] = Field(
        default_factory=list, description="GPUs to spread experiments over, one per experiment."
    )
    gpus_per_experiment: int = Field(1, ge=1)
    reuse_model: bool = False
    target_ci: TargetCI | None = Field(
        None, description="Keep adding cycles, up to target_ci.max_cycles, until the relative "
        "CI half-width of target_ci.metric is below target_ci.rel_half_width.")

    @field_validator("gpus")
    @classmethod
    def _gpu_ids(cls, v: list[int | str]) -> list[int | str]:
        return check_gpu_ids(v)

    @model_validator(mode="after")
    def _max_cycles_covers_cycles(self) -> StudyExecution:
        if self.target_ci is not None and self.target_ci.max_cycles < self.cycles:
            raise ValueError(f"target_ci.max_cycles ({self.target_ci.max_cycles}) is below "
                             f"cycles ({self.cycles}); it counts the planned cycles too")
        return self


class StudyConfig(ConfigModel):
    name: str = "study"
    base: ExperimentConfig = Field(default_factory=ExperimentConfig)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    study: StudyExecution = Field(default_factory=StudyExecution)

    @field_validator("sweep")
    @classmethod
    def _non_empty_axes(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in v.items():
            if not values:
                raise ValueError(f"'{path}' needs at least one value")
        return v

    @model_validator(mode="after")
    def _paths_exist(self) -> StudyConfig:
        from llem_schema.errors import check_dotted_path

        for path in self.sweep:
            check_dotted_path(ExperimentConfig, path)
        return self

    def n_experiments(self) -> int:
        n = 1
        for values in self.sweep.values():
            n *= len(values)
        return n


def set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"sweep path {path!r}: {p!r} is not a section")
    node[parts[-1]] = value


def expand_points(study: StudyConfig) -> list[dict[str, Any]]:
    """The sweep grid as a list of {dotted path: value} (one dict per experiment)."""
    keys = list(study.sweep)
    return [dict(zip(keys, combo)) for combo in itertools.product(*study.sweep.values())]


def expand_experiments(study: StudyConfig) -> list[ExperimentConfig]:
    """Every experiment of the grid, validated.

    Each swept *section* (e.g. ``workload`` with a given batch size) is validated once and
    reused as a model instance across the points that share it; pydantic does not
    revalidate instances, so a 10,000-point grid expands in well under a second. Any
    failure is re-raised from a full validation so the error carries the complete path.
    """
    base = study.base
    fields = ExperimentConfig.model_fields
    section_cache: dict[str, Any] = {}
    out: list[ExperimentConfig] = []
    for point in expand_points(study):
        data: dict[str, Any] = {name: getattr(base, name) for name in fields}
        by_section: dict[str, dict[str, Any]] = {}
        for path, value in point.items():
            head, _, rest = path.partition(".")
            by_section.setdefault(head, {})[rest] = value
        try:
            for section, values in by_section.items():
                if "" in values:  # a top-level scalar such as model or backend
                    data[section] = values[""]
                    continue
                key = section + json.dumps(values, sort_keys=True, default=str)
                if key not in section_cache:
                    current = getattr(base, section)
                    raw = (
                        current.model_dump() if hasattr(current, "model_dump")
                        else copy.deepcopy(current)
                    )
                    for sub, v in values.items():
                        set_dotted(raw, sub, v)
                    annotation = fields[section].annotation
                    section_cache[key] = (
                        annotation.model_validate(raw)
                        if isinstance(annotation, type) and hasattr(annotation, "model_validate")
                        else raw
                    )
                data[section] = section_cache[key]
            data["name"] = _point_name(study, point)
            out.append(ExperimentConfig.model_validate(data))
        except ValueError:
            full = base.model_dump()
            for path, value in point.items():
                set_dotted(full, path, value)
            full["name"] = _point_name(study, point)
            out.append(ExperimentConfig.model_validate(full))  # raises with the full path
    return out


def _point_name(study: StudyConfig, point: dict[str, Any]) -> str | None:
    if not point:
        return study.base.name or study.name
    label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())
    return f"{study.name}[{label}]"


def order_runs(n_experiments: int, execution: StudyExecution) -> list[tuple[int, int]]:
    """(experiment index, cycle) pairs in execution order."""
    if execution.order == "grouped":
        return [(e, c) for e in range(n_experiments) for c in range(execution.cycles)]
    runs = [(e, c) for c in range(execution.cycles) for e in range(n_experiments)]
    if execution.order == "shuffled":
        random.Random(execution.seed).shuffle(runs)
    return runs
