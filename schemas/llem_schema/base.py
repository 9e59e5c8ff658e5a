"""Shared pydantic base classes for the host<->container contract.

Every model here forbids unknown keys: a typo in a config must fail loudly rather than be
silently ignored (the predecessors lost results to exactly that).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field's type admits a YAML ``true``/``false`` as such."""
    if annotation in (bool, Any, object):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_bool(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return any(isinstance(a, bool) for a in typing.get_args(annotation))
    return origin is not None and origin not in (list, tuple, set, dict)


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignment is validated, and a
    boolean is never taken for a number (pydantic would read ``batch_size: true`` as 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # runs for every field of every model read (~270 per result.json): the field is
        # looked up only for a boolean, which keeps reading 10k results fast
        if not isinstance(value, bool):
            return value
        field = cls.__pydantic_fields__.get(info.field_name or "")
        if field is not None and not _accepts_bool(field.annotation):
            raise ValueError(f"expected a number or text, got the boolean {str(value).lower()}")
        return value


class ConfigModel(StrictModel):
    """Base for what a user writes (experiment, study, backend sections): also no infinity
    or NaN. YAML spells them ``.inf``/``.nan``; ``.inf`` passes every lower bound, so a
    ``min_window_seconds: .inf`` would repeat the workload forever instead of failing here.
    Results keep :class:`StrictModel`: a measured value is never refused on read."""

    model_config = ConfigDict(allow_inf_nan=False)


class MeasuredGroup(StrictModel):
    """A group of metrics in which every ``None`` must carry a reason.

    A metric that was not measured is ``null`` with a reason in ``null_reasons`` — never a
    made-up number. The validator enforces this so that no code path can quietly drop a
    metric without explaining why.
    """

    null_reasons: dict[str, str] = Field(
        default_factory=dict,
        description="Why a field in this group is null (field name -> reason).",
    )

    @model_validator(mode="after")
    def _every_null_has_a_reason(self) -> MeasuredGroup:
        missing = [
            name
            for name in type(self).model_fields
            if name != "null_reasons"
            and getattr(self, name) is None
            and name not in self.null_reasons
        ]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: fields {missing} are null without a reason in null_reasons"
            )
        return self

    @classmethod
    def unavailable(cls, reason: str, **known: Any) -> Any:
        """Build the group with every unspecified nullable field null for ``reason``."""
        reasons = {
            name: reason
            for name, field in cls.model_fields.items()
            if name != "null_reasons" and name not in known and field.default is None
            and field.default_factory is None
        }
        data = {name: None for name in reasons}
        data.update(known)
        return cls(null_reasons=reasons, **data)
