"""The Python API: typed results from a dict, a study from a mapping with a sweep, and a
DataFrame of its runs (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

import llem
from llem_schema.errors import ConfigError
from llem_schema.result import ExperimentResult
from tests.conftest import quick_overrides


def test_run_experiment_returns_a_typed_result(tmp_path: Path) -> None:
    r = llem.run_experiment({"name": "api-one", "model": "builtin:tiny-llama"}, tmp_path,
                            overrides=quick_overrides())
    assert isinstance(r, ExperimentResult)
    assert r.throughput.output_tokens == 4 * 8 and r.config.name == "api-one"
    with pytest.raises(ConfigError, match="use llem.run_study"):
        llem.run_experiment({"sweep": {"workload.batch_size": [1, 2]}}, tmp_path)


def test_run_study_and_load_results_as_a_dataframe(tmp_path: Path) -> None:
    study = llem.run_study({"name": "api-sweep", "model": "builtin:tiny-llama",
                            "sweep": {"workload.batch_size": [1, 2]}},
                           tmp_path, overrides=quick_overrides())
    assert study.ok and len(study.results) == 2
    assert study.study_dir.parent == tmp_path
    df = llem.load_results(study.study_dir)
    assert len(df) == 2
    assert sorted(df["config.workload.batch_size"]) == [1, 2]
    assert "throughput.output_tokens_per_s" in df.columns
