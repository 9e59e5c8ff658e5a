"""Every hub alias of issue 17 (alpaca, ShareGPT, GSM8K, MMLU, AI Energy Score) loads its
hub id, configuration and split, and turns a row in that set's own format into a prompt;
``dataset_split`` overrides the alias's split; ``max_chars`` drops long prompts. The hub
fetch is replaced by loading a local fixture in the set's row format: no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem_harness.workload import load_prompts
from llem_schema.config import WorkloadConfig

#: alias -> (hub id, configuration, default split, one row in the hub's format, its prompt)
ALIASES = {
    "alpaca": ("tatsu-lab/alpaca", None, "train",
               {"instruction": "Name a colour.", "input": "", "output": "Blue."},
               "Name a colour."),
    "sharegpt": ("anon8231489123/ShareGPT_Vicuna_unfiltered", None, "train",
                 {"id": "x", "conversations": [{"from": "human", "value": "Hi there?"},
                                               {"from": "gpt", "value": "Hello."}]},
                 "Hi there?"),
    "gsm8k": ("openai/gsm8k", "main", "test", {"question": "What is 2+2?", "answer": "4"},
              "What is 2+2?"),
    "mmlu": ("cais/mmlu", "all", "test",
             {"question": "Pick one", "subject": "x", "choices": ["a", "b", "c", "d"],
              "answer": 0},
             "Pick one\nA. a\nB. b\nC. c\nD. d\nAnswer:"),
    "aienergyscore": ("AIEnergyScore/text_generation", None, "train",
                      {"text": "Summarise the water cycle."}, "Summarise the water cycle."),
}


def _hub_from(fixture: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """datasets.load_dataset for a hub id answers with ``fixture``; records what was asked."""
    import datasets

    seen: dict[str, object] = {}
    real = datasets.load_dataset

    def fake(name, config=None, split=None, **kw):
        if name == "json":
            return real(name, data_files=kw["data_files"], split=split)
        seen.update(name=name, config=config, split=split)
        return real("json", data_files=str(fixture), split="train")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    return seen


@pytest.mark.parametrize("alias", list(ALIASES))
def test_each_alias_loads_its_hub_set_and_reads_its_row_format(
        alias: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub, config, split, row, prompt = ALIASES[alias]
    fixture = tmp_path / "rows.jsonl"
    fixture.write_text(json.dumps(row) + "\n")
    seen = _hub_from(fixture, monkeypatch)
    assert load_prompts(WorkloadConfig(dataset=alias, num_prompts=1)) == [prompt]
    assert seen == {"name": hub, "config": config, "split": split}


def test_dataset_split_overrides_the_alias_split_and_max_chars_filters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = tmp_path / "rows.jsonl"
    fixture.write_text("".join(json.dumps({"question": q, "answer": "1"}) + "\n"
                               for q in ("short?", "a much longer question?")))
    seen = _hub_from(fixture, monkeypatch)
    w = WorkloadConfig(dataset="gsm8k", dataset_split="train", max_chars=10, num_prompts=2)
    assert load_prompts(w) == ["short?", "short?"]
    assert seen["split"] == "train"
