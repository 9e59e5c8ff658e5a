"""Shared fixtures. Tests never touch the user's results dir or HF cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("LLEM_REGISTRY", raising=False)


def quick_overrides() -> dict[str, object]:
    """Settings that make a tiny-model run take a couple of seconds on a CPU."""
    return {
        "workload.num_prompts": 4,
        "workload.batch_size": 2,
        "decoding.max_new_tokens": 8,
        "measurement.baseline_seconds": 0,
        "measurement.warmup_max_runs": 1,
        "measurement.warmup_min_runs": 0,
        "measurement.min_window_seconds": 0,
        "runtime.runtime": "local",
    }


def llem_cmd() -> list[str]:
    return [sys.executable, "-m", "llem.cli"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
