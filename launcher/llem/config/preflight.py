"""Checks the host can make before any run starts (issue 15): a missing model path, an
unknown ``builtin:`` name, a model directory without ``config.json``, a dataset file that is
not there, and more tokens than the model has positions. Each problem is one line naming the
field and the fix; the harness would otherwise find it 10-25 s into a run, then retry."""

from __future__ import annotations

import json
from pathlib import Path

from llem_schema.builtins import BUILTIN_MODELS, BUILTIN_PREFIX
from llem_schema.config import ExperimentConfig

DATASET_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".parquet")


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or Path(value).expanduser().exists()


def _model_positions(exp: ExperimentConfig, paths: bool) -> tuple[int | None, str | None]:
    """(max positions or None, problem or None) for the experiment's model; ``paths``:
    also check that a local model path exists here."""
    model = exp.model
    if model.startswith(BUILTIN_PREFIX):
        name = model[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_MODELS:
            return None, (f"model: unknown builtin '{name}'; choose from "
                          f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_MODELS)}")
        return BUILTIN_MODELS[name]["max_position_embeddings"], None
    if not _looks_like_path(model):
        return None, None  # a hub id: resolved from the cache inside the run
    path = Path(model).expanduser()
    if not path.exists() and not paths:
        return None, None
    if not path.exists():
        return None, f"model: {path} does not exist; give a model directory or a hub id"
    cfg = path / "config.json"
    if path.is_dir() and not cfg.is_file():
        return None, f"model: {path} has no config.json (not a Hugging Face model directory)"
    try:
        return json.loads(cfg.read_text("utf-8")).get("max_position_embeddings"), None
    except (OSError, ValueError):
        return None, f"model: {cfg} is not valid JSON"


def problems(exp: ExperimentConfig, paths: bool = False) -> list[str]:
    """Everything wrong with one experiment that the host can see. ``paths``: also that the
    model and dataset files exist here (true when this host runs it; not for a dry run or a
    cluster whose nodes see other filesystems)."""
    out: list[str] = []
    positions, problem = _model_positions(exp, paths)
    if problem:
        out.append(problem)
    w = exp.workload
    inputs = w.input_len if w.dataset == "synthetic" else w.max_input_tokens
    need = inputs + exp.decoding.max_new_tokens
    if positions and need > positions:
        out.append(f"decoding.max_new_tokens: {exp.decoding.max_new_tokens} new + {inputs} "
                   f"input tokens exceed the model's {positions} positions; lower one of them")
    if exp.runtime.registry:
        from llem.images.refs import check_no_credentials
        from llem_schema.errors import ConfigError

        try:
            check_no_credentials(exp.runtime.registry)
        except ConfigError as exc:
            out.append(f"runtime.{exc}")
    ds = w.dataset
    local = ds not in ("builtin:prompts", "synthetic") and (
        ds.endswith(DATASET_SUFFIXES) or _looks_like_path(ds))
    if paths and local and not Path(ds).expanduser().is_file():
        out.append(f"workload.dataset: file not found: {ds}")
    return out
