"""Facts README states that code owns: a test fails when they drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from llem_schema.version import SCHEMA_VERSION

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_states_the_current_schema_version() -> None:
    stated = re.findall(r"`schema_version` `([0-9.]+)`", README.read_text())
    assert stated == [SCHEMA_VERSION], stated


def test_readme_opens_with_the_used_by_commands_the_integration_test_runs() -> None:
    """Issue 14: the first "Using it" lines are the used-by story exactly as a user types
    it, and tests/integration/test_used_by.py runs those very commands."""
    block = README.read_text().split("## Using it", 1)[1].split("```bash", 1)[1]
    runs = [ln.split("#")[0].strip() for ln in block.splitlines() if ln.startswith("llem run")]
    assert runs[:2] == ["llem run --backend pytorch examples/quickstart.yaml --runtime docker",
                        "llem run --backend tensorrt examples/quickstart.yaml"], runs[:2]
    test = (README.parent / "tests/integration/test_used_by.py").read_text()
    assert '"run", "--backend", "pytorch", str(QUICKSTART), "--runtime", "docker"' in test
    assert '"run", "--backend", "tensorrt", str(QUICKSTART)' in test
