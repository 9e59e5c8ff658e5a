"""StudyConfig: a base experiment, a sweep grid over dotted paths, cycles and ordering."""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llem_schema.base import StrictModel
from llem_schema.config import ExperimentConfig


class StudyExecution(StrictModel):
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


class StudyConfig(StrictModel):
    name: str = "study"
    base: ExperimentConfig = Field(default_factory=ExperimentConfig)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    study: StudyExecution = Field(default_factory=StudyExecution)

    @field_validator("sweep")
    @classmethod
    def _non_empty_axes(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in v.items():
            if not values:
                raise ValueError(f"sweep.{path}: needs at least one value")
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

    The base is dumped once; each point deep-copies only the sections it touches, so a
    10,000-point grid expands in well under a second.
    """
    base = study.base.model_dump(exclude_unset=False)
    out: list[ExperimentConfig] = []
    for point in expand_points(study):
        data = dict(base)
        for section in {p.split(".")[0] for p in point}:
            data[section] = copy.deepcopy(base[section])
        for path, value in point.items():
            set_dotted(data, path, value)
        if study.base.name or point:
            label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())
            data["name"] = f"{study.name}[{label}]" if label else (study.base.name or study.name)
        out.append(ExperimentConfig.model_validate(data))
    return out


def order_runs(n_experiments: int, execution: StudyExecution) -> list[tuple[int, int]]:
    """(experiment index, cycle) pairs in execution order."""
    if execution.order == "grouped":
        return [(e, c) for e in range(n_experiments) for c in range(execution.cycles)]
    runs = [(e, c) for c in range(execution.cycles) for e in range(n_experiments)]
    if execution.order == "shuffled":
        random.Random(execution.seed).shuffle(runs)
    return runs
