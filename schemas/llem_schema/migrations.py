"""Read every older major of a result through explicit migration steps.

A reader never guesses a format: it looks at ``schema_version``, runs the registered steps
up to the current major, and refuses a newer major with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llem_schema.version import SCHEMA_MAJOR, SCHEMA_VERSION

Migration = Callable[[dict[str, Any]], dict[str, Any]]

#: major N -> function turning a dict of major N into major N+1 (or, for the current
#: major, normalising older minors). Major 1 is current, so its step is the identity.
MIGRATIONS: dict[int, Migration] = {}


class SchemaVersionError(ValueError):
    """A document whose schema version this reader cannot handle."""


def register(from_major: int) -> Callable[[Migration], Migration]:
    def deco(fn: Migration) -> Migration:
        MIGRATIONS[from_major] = fn
        return fn

    return deco


@register(1)
def _identity_v1(data: dict[str, Any]) -> dict[str, Any]:
    """1.x -> 1.<current>: minors are additive, so nothing changes."""
    return data


def parse_version(value: Any, source: str = "document") -> tuple[int, int]:
    if not isinstance(value, str) or value.count(".") != 1:
        raise SchemaVersionError(
            f"{source}: schema_version {value!r} is not of the form MAJOR.MINOR; is this an "
            "llem result?"
        )
    major, minor = value.split(".")
    if not (major.isdigit() and minor.isdigit()):
        raise SchemaVersionError(
            f"{source}: schema_version {value!r} is not of the form MAJOR.MINOR")
    return int(major), int(minor)


def migrate(data: dict[str, Any], source: str = "document") -> dict[str, Any]:
    """Bring ``data`` to the current schema version or raise :class:`SchemaVersionError`."""
    if "schema_version" not in data:
        raise SchemaVersionError(f"{source}: no schema_version field; not an llem document")
    major, minor = parse_version(data["schema_version"], source)
    if major > SCHEMA_MAJOR:
        raise SchemaVersionError(
            f"{source}: schema_version {data['schema_version']} is newer than this llem "
            f"understands ({SCHEMA_VERSION}); upgrade llenergymeasure to read it"
        )
    out = dict(data)
    for m in range(major, SCHEMA_MAJOR + 1):
        step = MIGRATIONS.get(m)
        if step is None:
            raise SchemaVersionError(f"{source}: no migration registered from major {m}")
        out = step(out)
    # an older minor of this major is read as this version (minors are additive); a newer
    # minor keeps its own label: relabelling it older would misstate what wrote it
    current_major, current_minor = parse_version(SCHEMA_VERSION)
    if major < current_major or minor <= current_minor:
        out["schema_version"] = SCHEMA_VERSION
    return out
