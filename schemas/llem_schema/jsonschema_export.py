"""Generate the committed JSON Schema files (``make schemas``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llem_schema.config import ExperimentConfig
from llem_schema.result import ExperimentResult
from llem_schema.study import StudyConfig
from llem_schema.version import SCHEMA_MAJOR, SCHEMA_VERSION

MODELS = {"experiment": ExperimentConfig, "study": StudyConfig, "result": ExperimentResult}


def schema_documents() -> dict[str, str]:
    """File name -> JSON text for every contract model."""
    docs = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://llenergymeasure.dev/schemas/{name}.v{SCHEMA_MAJOR}.schema.json"
        schema["x-schema-version"] = SCHEMA_VERSION
        docs[f"{name}.v{SCHEMA_MAJOR}.schema.json"] = json.dumps(schema, indent=2) + "\n"
    return docs


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in schema_documents().items():
        (out / fname).write_text(text)
        print(f"wrote {out / fname}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "schemas/json")
