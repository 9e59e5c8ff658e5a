"""Which column of a table dataset holds the prompts: one rule for both sides.

The host's pre-flight applies it to a local file's header, before any run starts; the
harness applies it to the loaded dataset (the only place a hub dataset's columns are
known). Sharing it means both pick the same column, and a missing one is refused with the
same line, naming the dataset, the column and the columns there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from llem_schema.config import WorkloadConfig

#: tried in this order when neither ``dataset_column`` nor a row format is given
TEXT_COLUMNS = ("prompt", "text", "question", "instruction", "input", "content")
#: local files read as tables (``.txt`` is one prompt per line, no columns)
TABLE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
#: row format (a hub alias's, or ``dataset_format``) -> the columns its prompt is built from
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction",),
    "sharegpt": ("conversations",),
    "gsm8k": ("question",),
    "mmlu": ("question", "choices"),
    "aienergyscore": ("text",),
}

#: hub alias -> (hub id, configuration, default split); the harness adds how each row
#: becomes a prompt, the host's pre-flight finds the alias's cached copy by it
HUB_ALIASES: dict[str, tuple[str, str | None, str]] = {
    "alpaca": ("tatsu-lab/alpaca", None, "train"),
    "sharegpt": ("anon8231489123/ShareGPT_Vicuna_unfiltered", None, "train"),
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "mmlu": ("cais/mmlu", "all", "test"),
    "aienergyscore": ("AIEnergyScore/text_generation", None, "train"),
}

PromptSource = tuple[Literal["column", "format"], str]


def hub_source(w: WorkloadConfig) -> tuple[str, str | None, str]:
    """(hub id, configuration or None, split) the harness loads for a hub dataset."""
    hub, config, split = HUB_ALIASES.get(w.dataset, (w.dataset, None, "train"))
    return hub, w.dataset_config or config, w.dataset_split or split


class ColumnError(ValueError):
    """The dataset has no column to read prompts from; the message is one line."""


def prompt_source(w: WorkloadConfig, columns: Sequence[str], name: str) -> PromptSource:
    """``("column", c)``: each prompt is column ``c``; ``("format", f)``: rows are read in
    alias ``f``'s format. ``name`` is the file or hub id, for the message."""
    cols = list(columns)
    listed = ", ".join(cols) or "none"
    if w.dataset_column:
        if w.dataset_column not in cols:
            raise ColumnError(f"workload.dataset_column: '{w.dataset_column}' is not a column "
                              f"of {name}; columns: {listed}")
        return "column", w.dataset_column
    fmt = w.dataset_format or (w.dataset if w.dataset in FORMAT_COLUMNS else None)
    if fmt:
        missing = [c for c in FORMAT_COLUMNS[fmt] if c not in cols]
        if missing:
            field = "dataset_format" if w.dataset_format else "dataset"
            raise ColumnError(f"workload.{field}: {fmt} rows need column(s) "
                              f"{', '.join(missing)}, which {name} lacks; columns: {listed}")
        return "format", fmt
    col = next((c for c in TEXT_COLUMNS if c in cols), None)
    if col is None:
        raise ColumnError(f"workload.dataset: {name} has no prompt column (columns: {listed}); "
                          "name one with workload.dataset_column")
    return "column", col
