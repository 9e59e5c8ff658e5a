"""One version per engine: images/matrix.yaml's `engines:` table rules the image bases, the
pyproject extras' pins and the engine name lists the config mappings are tested against."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
import yaml

REPO = Path(__file__).resolve().parents[2]
MATRIX = yaml.safe_load((REPO / "images/matrix.yaml").read_text())
ENGINES: dict[str, str] = MATRIX["engines"]
PACKAGE = {"vllm": "vllm", "tensorrt": "tensorrt-llm"}


@pytest.mark.parametrize("engine", sorted(PACKAGE))
def test_image_bases_carry_the_engine_version(engine: str) -> None:
    bases = [i["base_image"] for i in MATRIX["images"] if i["backend"] == engine]
    assert bases and all(b.endswith(f":v{ENGINES[engine]}") or b.endswith(f":{ENGINES[engine]}")
                         for b in bases), bases
    dockerfile = (REPO / f"images/{engine}.Dockerfile").read_text()
    default = re.search(r"ARG BASE_IMAGE=(\S+)", dockerfile).group(1)
    assert default in bases


@pytest.mark.parametrize("engine", sorted(PACKAGE))
def test_extra_pins_the_engine_version(engine: str) -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"][engine]
    pins = [d for d in extras if d.split("=")[0].split(">")[0].split("<")[0] == PACKAGE[engine]]
    assert pins == [f"{PACKAGE[engine]}=={ENGINES[engine]}"]


@pytest.mark.parametrize("engine", sorted(PACKAGE))
def test_mapping_is_tested_against_that_version(engine: str) -> None:
    data = REPO / "tests/unit/llem_harness/backends/data"
    lists = sorted(p.name for p in data.glob(f"{engine}_*_names.json"))
    assert len(lists) == 1, lists
    listed = lists[0].split("_")[1]
    # a list made from the sources of X.Y covers X.Y.Z
    assert ENGINES[engine] == listed or ENGINES[engine].startswith(listed + "."), (lists, ENGINES)


def test_ci_installs_the_engine_version_the_matrix_names() -> None:
    """.ci/vllm-setup.sh reads the version from the matrix; the pattern it uses finds it."""
    script = (REPO / ".ci/vllm-setup.sh").read_text()
    assert "images/matrix.yaml" in script and "0.33" not in script
    found = re.findall(r'^  vllm: "(.*)"$', (REPO / "images/matrix.yaml").read_text(), re.M)
    assert found == [ENGINES["vllm"]]
