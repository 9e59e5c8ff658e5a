"""Turn validation failures into one line that names the field and what to do."""

from __future__ import annotations

import difflib
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from llem_schema.exceptions import ConfigError

__all__ = ["ConfigError", "check_dotted_path", "did_you_mean", "format_validation_error"]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc``."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        current = _unwrap_model(current.model_fields[part].annotation)
    return current


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None or get_args(annotation):
        for arg in get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    return None


def did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_dotted_path(model: type[BaseModel], path: str) -> None:
    """Raise a one-line error when ``path`` does not name a field of ``model``."""
    current: type[BaseModel] | None = model
    parts = path.split(".")
    for i, part in enumerate(parts):
        if current is None:
            return  # below a free-form dict (extra:) anything goes
        if part not in current.model_fields:
            prefix = ".".join(parts[:i])
            where = f"'{prefix}'" if prefix else "the experiment"
            raise ValueError(
                f"sweep path '{path}': {where} has no field '{part}'"
                f"{did_you_mean(part, list(current.model_fields))}"
            )
        current = _unwrap_model(current.model_fields[part].annotation)
        if current is None and i < len(parts) - 1 and parts[0] != "extra":
            raise ValueError(f"sweep path '{path}': '{part}' is a value, not a section")


def format_validation_error(
    exc: ValidationError, model: type[BaseModel], source: str, loc_prefix: tuple[str, ...] = ()
) -> str:
    """First error of ``exc`` as ``source: field: message`` with a did-you-mean for typos."""
    err = exc.errors()[0]
    loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and "[" in p))
    field = ".".join(str(p) for p in (*loc_prefix, *loc)) or "(top level)"
    if err.get("type") == "extra_forbidden":
        owner = _model_at(model, loc)
        hint = did_you_mean(str(loc[-1]), list(owner.model_fields)) if owner else ""
        msg = f"unknown key{hint}; arbitrary backend options belong under 'extra:'"
    else:
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if "input" in err and err.get("type") not in ("missing",) and not isinstance(
            err["input"], dict
        ):
            msg += f" (got {err['input']!r})"
    more = len(exc.errors()) - 1
    suffix = f" [+{more} more]" if more > 0 else ""
    return f"{source}: {field}: {msg}{suffix}"
