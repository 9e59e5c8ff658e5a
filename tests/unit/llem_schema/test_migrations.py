from __future__ import annotations

import pytest

from llem_schema.migrations import MIGRATIONS, SchemaVersionError, migrate
from llem_schema.version import SCHEMA_MAJOR, SCHEMA_VERSION

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


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


def test_version_shape_newer_minor_label_and_file_named(tmp_path) -> None:
    """Issue 16: the schema accepts only this major's MAJOR.MINOR; a newer minor keeps its
    label; a malformed version names the file."""
    import json

    import jsonschema

    from llem_schema.migrations import SchemaVersionError, migrate
    from llem_schema.version import SCHEMA_VERSION
    from tests.factories import result_dict

    schema = json.loads((REPO / "schemas/json/result.v1.schema.json").read_text())
    for bad in ("2.0", "v1.0", "1", "1.x"):
        d = result_dict()
        d["schema_version"] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(d, schema)
    major, minor = (int(x) for x in SCHEMA_VERSION.split("."))
    newer = f"{major}.{minor + 2}"
    assert migrate({"schema_version": newer}, "r.json")["schema_version"] == newer
    assert migrate({"schema_version": f"{major}.0"}, "r.json")["schema_version"] == SCHEMA_VERSION
    with pytest.raises(SchemaVersionError, match="runs/x/result.json: schema_version 'v1'"):
        migrate({"schema_version": "v1"}, "runs/x/result.json")
