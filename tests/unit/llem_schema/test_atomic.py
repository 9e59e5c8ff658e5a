from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem_schema import atomic


def test_atomic_json_roundtrip_and_no_temp_left(tmp_path: Path) -> None:
    p = tmp_path / "d" / "x.json"
    atomic.atomic_write_json(p, {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1}
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "x.json"
    atomic.atomic_write_json(p, {"old": True})

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        atomic.atomic_write_json(p, {"new": True})
    assert json.loads(p.read_text()) == {"old": True}
    assert [f.name for f in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_mode_the_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    import os

    old = os.umask(umask)
    try:
        p = tmp_path / f"r{umask:o}.json"
        atomic.atomic_write_json(p, {"a": 1})
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode
