"""Pre-flight of a hub dataset this host has loaded before (issue 17: "a missing dataset or
column is a pre-flight error naming it"): the ``datasets`` cache's dataset_info.json says
which columns and splits the set has, so a wrong column, split or row format is refused on
the host, naming the cached file, before any run starts. Not cached: left to the harness."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.config import preflight
from llem_schema.config import ExperimentConfig
from tests.unit.llem.config.hub_cache import write_hub_cache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "hf-datasets"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(where))
    return where


def _problems(**workload: object) -> list[str]:
    exp = ExperimentConfig.model_validate({"workload": workload})
    return preflight.dataset_problems(exp, paths=True)


def test_a_cached_hub_dataset_with_the_column_passes(cache: Path) -> None:
    write_hub_cache(cache, "org/set", {"question": ["a?"], "answer": ["1"]})
    assert preflight.hub_datasets_cache() == cache
    assert _problems(dataset="org/set") == []  # 'question' found by the shared rule
    assert _problems(dataset="org/set", dataset_column="answer") == []


def test_a_missing_column_names_the_column_the_cached_file_and_the_columns(
        cache: Path) -> None:
    info = write_hub_cache(cache, "org/set", {"question": ["a?"], "answer": ["1"]})
    (line,) = _problems(dataset="org/set", dataset_column="body")
    assert line.startswith("workload.dataset_column: 'body' is not a column of org/set")
    assert str(info) in line and "columns: question, answer" in line


def test_a_missing_split_is_refused_with_the_splits_there_are(cache: Path) -> None:
    write_hub_cache(cache, "org/set", {"text": ["a"]}, splits=("train", "validation"))
    (line,) = _problems(dataset="org/set", dataset_split="test")
    assert line.startswith("workload.dataset_split: split 'test' is not in org/set")
    assert "splits: train, validation" in line
    assert _problems(dataset="org/set", dataset_split="train[:10%]") == []  # slice syntax


def test_an_alias_is_checked_in_its_hub_configuration_and_row_format(cache: Path) -> None:
    """gsm8k is openai/gsm8k, configuration main, split test; its rows need 'question'."""
    write_hub_cache(cache, "openai/gsm8k", {"question": ["1+1?"], "answer": ["2"]},
                    splits=("train", "test"), config="main")
    assert _problems(dataset="gsm8k") == []
    write_hub_cache(cache, "tatsu-lab/alpaca", {"text": ["x"]}, splits=("train",))
    (line,) = _problems(dataset="alpaca")
    assert line.startswith("workload.dataset: alpaca rows need column(s) instruction")
    assert "tatsu-lab/alpaca (cached:" in line


def test_an_uncached_hub_dataset_is_left_to_the_harness(cache: Path) -> None:
    assert _problems(dataset="org/never-loaded", dataset_column="nope") == []
