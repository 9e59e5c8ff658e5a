"""Every committed example config validates (what README points users at must load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.config.loader import load

EXAMPLES = sorted((Path(__file__).resolve().parents[4] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_validates(path: Path) -> None:
    loaded = load(path)
    assert loaded.study.name
