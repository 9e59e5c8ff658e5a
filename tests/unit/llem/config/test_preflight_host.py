"""Pre-flight pieces the CLI table (tests/unit/llem/cli/test_bad_input_table.py) cannot
reach from a CPU host or a small file: a dataset's columns read from a prefix, GPUs of a
host that has some, the study-size limit, and where an error is blamed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llem.config import loader, preflight
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from llem_schema.study import StudyConfig, StudyExecution


def _exp(dataset: Path, **workload: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"workload": {"dataset": str(dataset), **workload}})


def test_first_json_record_past_the_first_prefix(tmp_path: Path) -> None:
    """A first record longer than the prefix read at first is still decoded whole."""
    f = tmp_path / "big.json"
    f.write_text(json.dumps([{"text": "x" * (3 * preflight.JSON_PREFIX), "id": 1}]))
    assert preflight.dataset_problems(_exp(f), paths=True) == []
    assert "columns: text, id" in preflight.dataset_problems(_exp(f, dataset_column="q"),
                                                             paths=True)[0]


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("cols.json", json.dumps({"prompt": ["a", "b"]}), None),  # a file of columns
    ("bom.csv", "\ufeffprompt,id\nhi,1\n", None),
    ("lines.json", '{"prompt": "a"}\n{"prompt": "b"}\n', None),  # JSON lines in .json
    ("empty.json", "[]", "the JSON array is empty"),
    ("blank.jsonl", "\n\n", "the file is empty"),
    ("scalar.jsonl", "3\n", "the first record is not a JSON object (got int)"),
])
def test_table_shapes(tmp_path: Path, name: str, content: str, problem: str | None) -> None:
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    found = preflight.dataset_problems(_exp(f), paths=True)
    assert found == ([] if problem is None else [f"workload.dataset: {f}: {problem}"])


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    """Columns are cached per file version (a sweep reads the header once), not per path."""
    f = tmp_path / "d.jsonl"
    f.write_text('{"prompt": "a"}\n')
    assert preflight.dataset_problems(_exp(f), paths=True) == []
    f.write_text('{"body": "a", "id": 22}\n')
    os.utime(f, ns=(1, 1))
    assert "no prompt column" in preflight.dataset_problems(_exp(f), paths=True)[0]


def test_dataset_here_is_checked_even_without_paths(tmp_path: Path) -> None:
    """config validate and --dry-run check a file that is here; one that is not may be on
    the cluster's nodes and passes until the run."""
    f = tmp_path / "d.csv"
    f.write_text("id,body\n")
    assert "no prompt column" in preflight.dataset_problems(_exp(f), paths=False)[0]
    assert preflight.dataset_problems(_exp(tmp_path / "elsewhere.csv"), paths=False) == []
    assert preflight.dataset_problems(_exp(tmp_path / "elsewhere.csv"), paths=True) == [
        f"workload.dataset: file not found: {tmp_path / 'elsewhere.csv'}"]


def test_hub_datasets_are_left_to_the_harness() -> None:
    exp = ExperimentConfig.model_validate(
        {"workload": {"dataset": "org/set", "dataset_column": "nope"}})
    assert preflight.dataset_problems(exp, paths=True) == []


def test_gpus_of_a_host_that_has_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "host_gpus", lambda: ["GPU-a", "GPU-b"])
    assert preflight.gpu_problems("runtime.gpus", [0, 1, "GPU-b", "MIG-x"]) == []
    assert preflight.gpu_problems("runtime.gpus", [2]) == [
        "runtime.gpus: GPU 2 is not on this host (2 GPU(s): indices 0-1); list the GPUs "
        "`nvidia-smi -L` shows"]
    assert "GPU GPU-z is not on this host" in preflight.gpu_problems("study.gpus", ["GPU-z"])[0]
    monkeypatch.setattr(preflight, "host_gpus", lambda: None)
    assert "this host has no NVIDIA GPU" in preflight.gpu_problems("runtime.gpus", ["MIG-x"])[0]
    assert preflight.gpu_problems("runtime.gpus", []) == []


def test_study_size_limit() -> None:
    def study(n: int, cycles: int) -> StudyConfig:
        return StudyConfig(sweep={"decoding.seed": list(range(n))},
                           study=StudyExecution(cycles=cycles))

    limit = preflight.MAX_RUNS_UNCONFIRMED
    assert preflight.size_problem(study(limit, 1)) is None
    assert preflight.size_problem(study(limit // 2 + 1, 2)) == (
        f"sweep: {limit // 2 + 1} decoding.seed x 2 cycle(s) = {limit + 2} runs, more than "
        f"{limit}; check it with --dry-run, then pass --yes to run them all")


def test_duplicate_keys_are_refused_but_merges_may_override(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text("decoding: {seed: 1, seed: 2}\n")
    with pytest.raises(ConfigError, match=r"line 1, column 21: duplicate key 'seed' \(first "
                                          r"given on line 1\)"):
        loader.read_yaml(f)
    f.write_text("base: &b {seed: 1, max_new_tokens: 4}\ndecoding:\n  <<: *b\n  seed: 2\n")
    assert loader.read_yaml(f)["decoding"] == {"seed": 2, "max_new_tokens": 4}


def test_flags_are_blamed_not_the_file(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    f.write_text("workload: {batch_size: 2}\n")
    with pytest.raises(ConfigError, match=r"^command line: workload.batch_size:"):
        loader.load(f, {"workload.batch_size": 0})
    with pytest.raises(ConfigError, match=r"^command line: study.cycles:"):
        loader.load(f, {"study.cycles": 0})
    with pytest.raises(ConfigError, match=r"^command line: model: unknown builtin"):
        loader.load(f, {"model": "builtin:nope"})
    f.write_text("workload: {batch_size: 0}\n")
    with pytest.raises(ConfigError, match=rf"^{f}: workload.batch_size:"):
        loader.load(f, {"workload.num_prompts": 4})
