"""The prompt-column rule both sides apply (issue 17): the host to a local file's header
before a run, the harness to a loaded dataset (the only place a hub dataset's columns are
known). One rule, one message naming the dataset, the column and the columns there are."""

from __future__ import annotations

import pytest

from llem_schema.config import WorkloadConfig
from llem_schema.datasets import FORMAT_COLUMNS, TEXT_COLUMNS, ColumnError, prompt_source


def _w(**kw: object) -> WorkloadConfig:
    return WorkloadConfig(**kw)  # type: ignore[arg-type]


def test_named_column_is_used_or_named_with_the_columns_there_are() -> None:
    assert prompt_source(_w(dataset="x.csv", dataset_column="body"), ["id", "body"],
                         "x.csv") == ("column", "body")
    with pytest.raises(ColumnError) as exc:
        prompt_source(_w(dataset="org/set", dataset_column="body"), ["id", "text"], "org/set")
    assert str(exc.value) == ("workload.dataset_column: 'body' is not a column of org/set; "
                              "columns: id, text")


def test_default_column_is_the_first_known_text_column() -> None:
    assert prompt_source(_w(dataset="x.jsonl"), ["id", "question", "text"], "x.jsonl") == (
        "column", "text")  # TEXT_COLUMNS order, not the file's
    assert TEXT_COLUMNS.index("text") < TEXT_COLUMNS.index("question")
    with pytest.raises(ColumnError, match=r"x.jsonl has no prompt column \(columns: id, body\)"):
        prompt_source(_w(dataset="x.jsonl"), ["id", "body"], "x.jsonl")


def test_row_formats_need_their_columns() -> None:
    assert prompt_source(_w(dataset="gsm8k"), ["question", "answer"], "openai/gsm8k") == (
        "format", "gsm8k")
    with pytest.raises(ColumnError, match=r"^workload.dataset: mmlu rows need column\(s\) "
                                          r"choices, which cais/mmlu lacks"):
        prompt_source(_w(dataset="mmlu"), ["question"], "cais/mmlu")
    with pytest.raises(ColumnError, match=r"^workload.dataset_format: sharegpt .* columns: "
                                          r"prompt$"):
        prompt_source(_w(dataset="f.jsonl", dataset_format="sharegpt"), ["prompt"], "f.jsonl")


def test_harness_reads_with_the_shared_rule() -> None:
    """The harness's aliases are the formats the host checks, and a hub dataset missing
    the column fails in the harness with the host's line, naming dataset and column."""
    from llem_harness.prompt_sets import ALIASES, DatasetError, _extractor

    assert set(ALIASES) == set(FORMAT_COLUMNS)
    w = _w(dataset="org/set", dataset_column="body")
    with pytest.raises(DatasetError, match=r"'body' is not a column of org/set; columns: text"):
        _extractor(w, ["text"], "org/set")
    assert _extractor(_w(dataset="org/set"), ["id", "prompt"], "org/set")({"prompt": 7}) == "7"
    for fmt, columns in FORMAT_COLUMNS.items():  # each format reads only the columns it lists
        row = {c: ["a", "b", "c", "d"] if c == "choices" else
               [{"from": "human", "value": "v"}] if c == "conversations" else "v"
               for c in columns}
        assert _extractor(_w(dataset="f.jsonl", dataset_format=fmt), list(columns), "f")(row)
