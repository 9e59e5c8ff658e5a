"""Datasets (issue 17): local JSON/JSONL/CSV/Parquet files and the hub aliases, read through
the ``datasets`` library, on small fixtures written in the hub datasets' own row formats (the
hub fetch itself is replaced by loading the fixture: no network in tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llem_harness.workload import DatasetError, load_prompts
from llem_schema.config import WorkloadConfig

ALPACA = [{"instruction": "Name a colour.", "input": "", "output": "Blue."},
          {"instruction": "Translate", "input": "chat", "output": "cat"}]
SHAREGPT = [{"id": "x", "conversations": [{"from": "human", "value": "Hi there?"},
                                          {"from": "gpt", "value": "Hello."}]}]
GSM8K = {"question": ["What is 2+2?", "What is 3*3?"], "answer": ["4", "9"]}
MMLU = [{"question": "Pick one", "subject": "x", "choices": ["a", "b", "c", "d"], "answer": 0}]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_local_files_in_every_table_format(tmp_path: Path) -> None:
    j = _jsonl(tmp_path / "a.jsonl", ALPACA)
    w = WorkloadConfig(dataset=str(j), dataset_format="alpaca", num_prompts=2)
    assert load_prompts(w) == ["Name a colour.", "Translate\n\nchat"]
    (tmp_path / "s.json").write_text(json.dumps(SHAREGPT))
    w = WorkloadConfig(dataset=str(tmp_path / "s.json"), dataset_format="sharegpt", num_prompts=1)
    assert load_prompts(w) == ["Hi there?"]
    pq.write_table(pa.table(GSM8K), tmp_path / "g.parquet")
    w = WorkloadConfig(dataset=str(tmp_path / "g.parquet"), num_prompts=2)
    assert load_prompts(w) == GSM8K["question"]  # the 'question' column is found by itself
    (tmp_path / "c.csv").write_text("id,body\n1,short\n2,a much longer prompt\n")
    w = WorkloadConfig(dataset=str(tmp_path / "c.csv"), dataset_column="body", min_chars=6,
                       num_prompts=2)
    assert load_prompts(w) == ["a much longer prompt"] * 2
    _jsonl(tmp_path / "m.jsonl", MMLU)
    w = WorkloadConfig(dataset=str(tmp_path / "m.jsonl"), dataset_format="mmlu", num_prompts=1)
    assert load_prompts(w)[0].startswith("Pick one\nA. a\nB. b")


def test_seeded_shuffle_is_reproducible(tmp_path: Path) -> None:
    rows = [{"prompt": f"p{i}"} for i in range(20)]
    f = _jsonl(tmp_path / "p.jsonl", rows)
    w = WorkloadConfig(dataset=str(f), shuffle=True, seed=3, num_prompts=20)
    a = load_prompts(w)
    assert a == load_prompts(w) and a != [r["prompt"] for r in rows] and sorted(a) == sorted(
        r["prompt"] for r in rows)


def test_missing_column_names_it_and_lists_the_columns(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "p.jsonl", [{"prompt": "x", "id": 1}])
    with pytest.raises(DatasetError, match=r"'body' is not a column .* columns: prompt, id"):
        load_prompts(WorkloadConfig(dataset=str(f), dataset_column="body"))


def test_hub_alias_resolves_to_its_dataset(tmp_path: Path, monkeypatch) -> None:
    import datasets

    seen = {}
    f = _jsonl(tmp_path / "gsm.jsonl", [{"question": q, "answer": a}
                                        for q, a in zip(GSM8K["question"], GSM8K["answer"])])
    real = datasets.load_dataset

    def fake(name, config=None, split=None, **kw):
        if name == "json":
            return real(name, data_files=kw["data_files"], split=split)
        seen.update(name=name, config=config, split=split)
        return real("json", data_files=str(f), split="train")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    assert load_prompts(WorkloadConfig(dataset="gsm8k", num_prompts=1)) == ["What is 2+2?"]
    assert seen == {"name": "openai/gsm8k", "config": "main", "split": "test"}
