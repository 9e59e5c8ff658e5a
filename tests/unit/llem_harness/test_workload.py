from __future__ import annotations

from pathlib import Path

import pytest

from llem_harness.workload import DatasetError, arrival_times, builtin_prompts, load_prompts
from llem_schema.config import WorkloadConfig


def test_builtin_prompts_cycle() -> None:
    n = len(builtin_prompts())
    ps = load_prompts(WorkloadConfig(num_prompts=n + 3))
    assert len(ps) == n + 3 and ps[n] == ps[0]


def test_jsonl_and_txt(tmp_path: Path) -> None:
    j = tmp_path / "d.jsonl"
    j.write_text('{"prompt": "a"}\n\n{"prompt": "b"}\n')
    assert load_prompts(WorkloadConfig(dataset=str(j), num_prompts=3)) == ["a", "b", "a"]
    t = tmp_path / "d.txt"
    t.write_text("x\ny\n")
    assert load_prompts(WorkloadConfig(dataset=str(t), num_prompts=2)) == ["x", "y"]


def test_dataset_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="workload.dataset"):
        load_prompts(WorkloadConfig(dataset=str(tmp_path / "missing.txt")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"foo": 1}\n')
    with pytest.raises(DatasetError,
                       match=r"bad.jsonl has no prompt column \(columns: foo\); name one with"):
        load_prompts(WorkloadConfig(dataset=str(bad)))


def test_poisson_arrivals_are_seeded_with_the_right_rate() -> None:
    w = WorkloadConfig.model_validate({"traffic": {"mode": "poisson", "rate": 4.0, "seed": 3}})
    a = arrival_times(w, 4000)
    assert a == arrival_times(w, 4000) and a[0] == 0.0
    assert all(b >= x for x, b in zip(a, a[1:]))
    rate = (len(a) - 1) / a[-1]
    assert 3.7 < rate < 4.3
    assert arrival_times(WorkloadConfig(), 3) == [0.0, 0.0, 0.0]
