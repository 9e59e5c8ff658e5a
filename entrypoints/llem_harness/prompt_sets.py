"""Prompt datasets: Hugging Face hub datasets through the ``datasets`` library (with built-in
aliases for the sets the field uses) and local JSON/JSONL/CSV/Parquet files, one text column
(or a template over several) each, with a split, seeded shuffling and length filters.

Aliases and how each turns a row into a prompt:
  alpaca        tatsu-lab/alpaca                       instruction + input
  sharegpt      anon8231489123/ShareGPT_Vicuna_unfiltered  first human turn of conversations
  gsm8k         openai/gsm8k (main, test)              question
  mmlu          cais/mmlu (all, test)                  question + lettered choices
  aienergyscore AIEnergyScore/text_generation          text
A local file can use an alias's row format with ``workload.dataset_format``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llem_schema.config import WorkloadConfig
from llem_schema.datasets import HUB_ALIASES, ColumnError, hub_source, prompt_source

Row = dict[str, Any]


class DatasetError(ValueError):
    """The workload's dataset cannot be read."""


def _alpaca(row: Row) -> str:
    extra = str(row.get("input") or "").strip()
    return f"{row['instruction']}\n\n{extra}" if extra else str(row["instruction"])


def _sharegpt(row: Row) -> str:
    turns = row["conversations"]
    return next(str(t["value"]) for t in turns if t.get("from") in ("human", "user"))


def _mmlu(row: Row) -> str:
    choices = "\n".join(f"{'ABCD'[i]}. {c}" for i, c in enumerate(row["choices"]))
    return f"{row['question']}\n{choices}\nAnswer:"


ROW_PROMPT: dict[str, Callable[[Row], str]] = {
    "alpaca": _alpaca,
    "sharegpt": _sharegpt,
    "gsm8k": lambda r: str(r["question"]),
    "mmlu": _mmlu,
    "aienergyscore": lambda r: str(r["text"]),
}
#: alias -> (hub id, config, default split, row -> prompt); the hub side is shared with
#: the host's pre-flight (llem_schema.datasets.HUB_ALIASES)
ALIASES: dict[str, tuple[str, str | None, str, Callable[[Row], str]]] = {
    alias: (*HUB_ALIASES[alias], row) for alias, row in ROW_PROMPT.items()
}
LOCAL_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def _rows(w: WorkloadConfig) -> tuple[Any, str]:
    """The dataset split and a name for messages."""
    try:
        import datasets
    except ImportError as exc:
        raise DatasetError("workload.dataset: hub and table datasets need the 'datasets' "
                           "package: pip install 'llenergymeasure[hf]'") from exc
    src, path = w.dataset, Path(w.dataset).expanduser()
    if path.suffix in LOCAL_BUILDERS:
        if not path.is_file():
            raise DatasetError(f"workload.dataset: file not found: {src}")
        return datasets.load_dataset(LOCAL_BUILDERS[path.suffix], data_files=str(path),
                                     split="train"), src
    hub, config, split = hub_source(w)
    try:
        return datasets.load_dataset(hub, config, split=split), hub
    except Exception as exc:
        raise DatasetError(f"workload.dataset: cannot load '{hub}' ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc


def _extractor(w: WorkloadConfig, columns: list[str], name: str) -> Callable[[Row], str]:
    """Row -> prompt, by the rule the host's pre-flight applied to a local file's header
    (:func:`llem_schema.datasets.prompt_source`); a hub dataset is first checked here."""
    try:
        kind, value = prompt_source(w, columns, name)
    except ColumnError as exc:
        raise DatasetError(str(exc)) from None
    if kind == "format":
        return ALIASES[value][3]
    return lambda r: str(r[value])


def table_prompts(w: WorkloadConfig) -> list[str]:
    """Prompts from a hub or table dataset, filtered, then shuffled with ``workload.seed``."""
    data, name = _rows(w)
    get = _extractor(w, list(data.column_names), name)
    prompts = []
    for i, row in enumerate(data):
        try:
            text = get(row).strip()
        except (KeyError, TypeError, StopIteration, IndexError) as exc:
            raise DatasetError(f"workload.dataset: {name} row {i} does not fit the "
                               f"{w.dataset_format or 'chosen'} format ({exc!r})") from exc
        if text and (w.min_chars or 0) <= len(text) <= (w.max_chars or len(text)):
            prompts.append(text)
    if w.shuffle:
        random.Random(w.seed).shuffle(prompts)
    return prompts
