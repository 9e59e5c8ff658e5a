"""The host -> contract <- container boundary, checked on the source: ``llem`` never imports
``llem_harness``, the harness never imports ``llem``, both import ``llem_schema``, and the
contract imports nothing but pydantic, pyyaml and the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"llem": REPO / "launcher/llem", "llem_harness": REPO / "entrypoints/llem_harness",
         "llem_schema": REPO / "schemas/llem_schema"}


def imported_tops(root: Path) -> dict[str, set[str]]:
    """Top-level package of every import (module level or inside functions), per file."""
    out: dict[str, set[str]] = {}
    for f in root.rglob("*.py"):
        tops: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                tops.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops.add(node.module.split(".")[0])
        out[str(f.relative_to(REPO))] = tops
    return out


@pytest.mark.parametrize("pkg, forbidden", [("llem", "llem_harness"), ("llem_harness", "llem")])
def test_host_and_harness_never_import_each_other(pkg: str, forbidden: str) -> None:
    files = imported_tops(ROOTS[pkg])
    offenders = sorted(f for f, tops in files.items() if forbidden in tops)
    assert not offenders, offenders
    assert any("llem_schema" in tops for tops in files.values())


def test_contract_imports_only_pydantic_yaml_and_stdlib() -> None:
    allowed = {"pydantic", "pydantic_core", "yaml", "llem_schema", *sys.stdlib_module_names}
    files = imported_tops(ROOTS["llem_schema"])
    bad = {f: sorted(tops - allowed) for f, tops in files.items() if tops - allowed}
    assert not bad, bad
