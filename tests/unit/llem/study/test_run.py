from __future__ import annotations

from pathlib import Path

import pytest

from llem.study.execute import harness_env


def test_harness_env_passes_names_and_a_study_baseline_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLEM_BASELINE_CACHE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    run_dir = tmp_path / "study" / "e000-abc" / "cycle-0"
    env = harness_env("local", run_dir)
    assert env["LLEM_BASELINE_CACHE"] == str((tmp_path / "study" / ".baseline-cache").resolve())
    assert env["HF_TOKEN"] == "hf_not_a_real_token"
    assert "UNRELATED_SECRET" not in env
    assert "LLEM_BASELINE_CACHE" not in harness_env("docker", run_dir)
