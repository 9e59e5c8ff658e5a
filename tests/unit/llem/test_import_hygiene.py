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


def test_help_loads_neither_the_contract_nor_the_image_machinery() -> None:
    """`llem --help` has a 0.3 s budget (benchmarks/cli_startup.py): command modules import
    their heavy parts (pydantic models, docker, the runtimes) inside the commands, and the
    help is plain click (typer's rich help pulls in rich.markdown and pygments)."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys\nsys.argv=['llem','--help']\nfrom llem.cli import main\n"
         "try:\n    main()\nexcept SystemExit:\n    pass\n"
         "print(' '.join(sorted(sys.modules)), file=sys.stderr)"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    mods = set(out.stderr.split())
    unwanted = {"llem.images", "llem.study.manifest", "llem.study.execute", "llem_schema.result",
                "pydantic", "docker", "yaml", "rich.markdown", "pygments"}
    assert not mods & unwanted, sorted(mods & unwanted)
    assert "Usage: llem" in out.stdout


def test_lock_file_name_is_one_name() -> None:
    from llem.cli import images as images_cmd
    from llem.images import base as images_base

    assert images_cmd.LOCK_FILE == images_base.LOCK_FILE
