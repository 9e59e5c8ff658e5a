from __future__ import annotations

import pytest

from llem_schema.migrations import MIGRATIONS, SchemaVersionError, migrate
from llem_schema.version import SCHEMA_MAJOR, SCHEMA_VERSION


def test_current_major_has_a_step() -> None:
    assert SCHEMA_MAJOR in MIGRATIONS


def test_older_minor_migrates_to_current() -> None:
    out = migrate({"schema_version": f"{SCHEMA_MAJOR}.0", "x": 1})
    assert out["schema_version"] == SCHEMA_VERSION and out["x"] == 1


def test_newer_major_refused_with_message() -> None:
    with pytest.raises(SchemaVersionError, match="newer than this llem understands.*upgrade"):
        migrate({"schema_version": f"{SCHEMA_MAJOR + 1}.0"}, "r.json")


@pytest.mark.parametrize("bad", [{}, {"schema_version": "1"}, {"schema_version": 1.0},
                                 {"schema_version": "a.b"}])
def test_malformed_version_refused(bad: dict) -> None:
    with pytest.raises(SchemaVersionError):
        migrate(bad)
