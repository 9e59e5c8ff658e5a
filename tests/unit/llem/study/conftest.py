"""Fixtures shared by the study tests that run tests/fixtures/fake_harness.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def fake_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[float], Path]:
    """``fake_counter(sleep_s)``: the fake harness appends a line per execution to the file
    returned (how the tests count runs: none lost, none repeated) and sleeps ``sleep_s`` in
    each (long enough, where a test needs it, for runs to overlap or be interrupted)."""

    def arm(sleep_s: float) -> Path:
        path = tmp_path / "executions.log"
        monkeypatch.setenv("LLEM_FAKE_COUNTER", str(path))
        monkeypatch.setenv("LLEM_FAKE_SLEEP", str(sleep_s))
        return path

    return arm
