"""The test tree itself: pytest (``prepend`` import mode) imports a test file by the dotted
name it gets from the nearest folder up without ``__init__.py``, so two files with one such
name break collection of the whole suite (it did once: CI ran ``make test`` over unit and
integration tests, and two ``test_rerun.py`` collided)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    """The name pytest imports ``path`` under: its basename, prefixed by every enclosing
    folder that is a package (has ``__init__.py``)."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def test_every_test_module_has_a_distinct_import_name() -> None:
    names: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        names[module_name(path)].append(str(path.relative_to(TESTS)))
    clashes = {n: files for n, files in names.items() if len(files) > 1}
    assert not clashes, f"rename one of each (or add __init__.py): {clashes}"


def test_a_clash_is_seen(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "test_x.py").write_text("")
    (tmp_path / "b" / "__init__.py").write_text("")
    assert module_name(tmp_path / "a" / "test_x.py") == "test_x"
    assert module_name(tmp_path / "b" / "test_x.py") == "b.test_x"
