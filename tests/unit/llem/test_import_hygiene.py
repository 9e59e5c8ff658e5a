"""The host CLI must not load ML stacks; the harness must never import docker."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "pynvml", "vllm", "tensorrt_llm")


def _loaded(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    return {m.split(".")[0] for m in out}


def test_cli_import_loads_no_ml_stack() -> None:
    mods = _loaded("import llem.cli")
    assert not mods & set(HEAVY), mods & set(HEAVY)


def test_cli_help_loads_no_ml_stack() -> None:
    mods = _loaded(
        "import sys\nsys.argv=['llem','--help']\nfrom llem.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert not mods & set(HEAVY)


def test_harness_never_imports_docker() -> None:
    mods = _loaded(
        "import llem_harness.runner, llem_harness.backends.pytorch, llem_harness.energy.select, "
        "llem_harness.sampler, llem_harness.environment"
    )
    assert "docker" not in mods


def test_harness_sources_do_not_mention_docker_import() -> None:
    from pathlib import Path

    import llem_harness

    root = Path(llem_harness.__file__).parent
    for f in root.rglob("*.py"):
        text = f.read_text()
        assert "import docker" not in text and "from docker" not in text, f
