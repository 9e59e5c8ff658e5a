"""Checks the host can make before any run starts (issue 15): a missing model path, an
unknown ``builtin:`` name, a model directory without ``config.json``, a dataset file that is
not there or lacks the prompt column, more tokens than the model has positions, GPUs this
host does not have, and a sweep far larger than intended. Each problem is one line naming
the field and the fix; the harness would otherwise find it 10-25 s into a run, then retry."""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from llem_schema.builtins import BUILTIN_MODELS, BUILTIN_PREFIX
from llem_schema.config import ExperimentConfig, WorkloadConfig
from llem_schema.datasets import TABLE_SUFFIXES, ColumnError, hub_source, prompt_source
from llem_schema.study import StudyConfig

DATASET_SUFFIXES = (".txt", *TABLE_SUFFIXES)
#: runs ``llem run`` starts without ``--yes``: more is nearly always a sweep typo (an axis
#: of 100 values where 10 were meant), found after hours of GPU time otherwise
MAX_RUNS_UNCONFIRMED = 1000
#: the first JSON value is decoded from a prefix this long, doubled until it parses
JSON_PREFIX = 1 << 16


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
    model and dataset files exist here and the GPUs asked for are this host's (true when
    this host runs it; not for a dry run or a cluster whose nodes see other filesystems).
    A dataset file that is here is checked for its prompt column either way, as a model
    directory that is here is read for its positions."""
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
    out += extra_problems(exp)
    out += dataset_problems(exp, paths)
    if paths:
        out += gpu_problems("runtime.gpus", exp.runtime.gpus)
    return out


# ------------------------------------------------------------------------------- extra:


def _did_you_mean(key: str, known: frozenset[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def extra_problems(exp: ExperimentConfig) -> list[str]:
    """``extra:`` keys the chosen engine does not take, checked against its real parameter
    names (:mod:`llem.config.engine_names`, the lists the backend mappings are tested
    against): pytorch's go to ``generate()``, vLLM's to ``EngineArgs`` and TensorRT-LLM's to
    ``LLM()``, with ``extra.sampling`` going to their ``SamplingParams``."""
    from llem.config import engine_names as names

    if exp.backend == "pytorch":
        known = names.PYTORCH_GENERATE | names.PYTORCH_MODEL_KWARGS
        what = f"a generate() argument or generation setting of transformers " \
               f"{names.VERSIONS['transformers']}"
        sampling: frozenset[str] = frozenset()
    elif exp.backend == "vllm":
        known, sampling = names.VLLM_ENGINE_ARGS, names.VLLM_SAMPLING
        what = f"a vLLM {names.VERSIONS['vllm']} EngineArgs name"
    else:
        known, sampling = names.TENSORRT_LLM_ARGS, names.TENSORRT_SAMPLING
        what = f"a TensorRT-LLM {names.VERSIONS['tensorrt']} LLM() argument"
    for key, value in exp.extra.items():
        if key == "sampling" and sampling:
            if not isinstance(value, dict):
                return [f"extra.sampling: must be a mapping of SamplingParams names "
                        f"(got {type(value).__name__})"]
            for name in value:
                if name not in sampling:
                    return [f"extra.sampling.{name}: not a {exp.backend} SamplingParams "
                            f"name{_did_you_mean(str(name), sampling)}"]
            continue
        if key in known:
            continue
        hint = _did_you_mean(str(key), known)
        if not hint and key in sampling:
            hint = " (a SamplingParams name: put it under extra.sampling)"
        return [f"extra.{key}: not {what}{hint}"]
    return []


# ----------------------------------------------------------------------------- datasets


def dataset_problems(exp: ExperimentConfig, paths: bool) -> list[str]:
    """A local dataset file: there (when ``paths``), a file, and holding the column the
    harness will read prompts from (the rule of :mod:`llem_schema.datasets`)."""
    w = exp.workload
    ds = w.dataset
    if ds in ("builtin:prompts", "synthetic"):
        return []
    if not (ds.endswith(DATASET_SUFFIXES) or _looks_like_path(ds)):
        return hub_problems(w)
    path = Path(ds).expanduser()
    if not path.exists():
        return [f"workload.dataset: file not found: {ds}"] if paths else []
    if not path.is_file():
        return [f"workload.dataset: {ds} is a directory, not a dataset file"]
    if path.suffix not in TABLE_SUFFIXES:
        return []  # .txt: one prompt per line, no columns
    stat = path.stat()
    columns, problem = _table_columns(str(path), stat.st_mtime_ns, stat.st_size)
    if problem:
        return [f"workload.dataset: {ds}: {problem}"]
    try:
        prompt_source(w, columns, ds)
    except ColumnError as exc:
        return [str(exc)]
    return []


def hub_problems(w: WorkloadConfig) -> list[str]:
    """A hub dataset (or alias) loaded on this host before: its cached copy in the
    ``datasets`` cache says which columns and splits it has, so a missing column or split
    is refused here, naming the cached file. Not cached here: only the harness can see it."""
    cached = _hub_cache_info(*hub_source(w), str(hub_datasets_cache()))
    if cached is None:
        return []
    info_path, columns, splits = cached
    hub, _config, split = hub_source(w)
    name = f"{hub} (cached: {info_path})"
    asked = [re.sub(r"\[.*", "", part).strip() for part in split.split("+")]  # train[:10%]
    if splits and any(a not in splits for a in asked):
        field = "dataset_split" if w.dataset_split else "dataset"
        return [f"workload.{field}: split '{split}' is not in {name}; splits: "
                f"{', '.join(splits)}"]
    try:
        prompt_source(w, columns, name)
    except ColumnError as exc:
        return [str(exc)]
    return []


def hub_datasets_cache() -> Path:
    """Where the ``datasets`` library keeps prepared hub datasets (its own rule)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface")
    return Path(home).expanduser() / "datasets"


def _snake(name: str) -> str:
    """datasets.naming.camelcase_to_snakecase: the cache directory of a dataset name."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


@functools.lru_cache(maxsize=64)
def _hub_cache_info(hub: str, config: str | None, split: str,
                    cache: str) -> tuple[str, list[str], list[str]] | None:
    """(dataset_info.json, columns, splits) of the newest cached copy of ``hub`` (in
    configuration ``config`` when given), as ``datasets`` itself picks it offline."""
    parts = hub.split("/")
    parts[-1] = _snake(parts[-1])
    root = Path(cache) / "___".join(parts)
    infos = [p for p in root.glob(f"{config or '*'}/*/*/dataset_info.json") if p.is_file()]
    if not infos:
        return None
    info = max(infos, key=lambda p: p.parent.stat().st_mtime)
    try:
        data = json.loads(info.read_text("utf-8"))
        columns = [str(c) for c in data.get("features") or {}]
        splits = [str(s) for s in data.get("splits") or {}]
    except (OSError, ValueError, AttributeError):
        return None
    return (str(info), columns, splits) if columns else None


@functools.lru_cache(maxsize=64)
def _table_columns(path: str, mtime_ns: int, size: int) -> tuple[list[str], str | None]:
    """(column names, problem) of a local table file from its header, its first record or
    its Parquet schema -- the columns the harness's loader will see, without reading the
    rows. Cached per file version: a sweep checks one file once, not once per point."""
    suffix = Path(path).suffix
    try:
        if suffix == ".parquet":
            return _parquet_columns(path), None
        if suffix == ".csv":
            with open(path, encoding="utf-8-sig", newline="") as f:
                header = next(csv.reader(f), None)
            return (header, None) if header else ([], "the file is empty")
        return _json_columns(path)
    except UnicodeDecodeError:
        return [], "not UTF-8 text"
    except OSError as exc:
        return [], f"cannot be read ({exc.strerror or exc})"
    except (ValueError, csv.Error) as exc:
        return [], f"cannot be read as {suffix[1:]} ({str(exc).splitlines()[0]})"


def _parquet_columns(path: str) -> list[str]:
    import pyarrow.parquet as pq  # lazy: keeps `llem --help` fast

    try:
        return list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow.ArrowInvalid and friends: not a Parquet file
        raise ValueError(str(exc) or type(exc).__name__) from None


def _json_columns(path: str) -> tuple[list[str], str | None]:
    """Keys of the first record: a JSON-lines row, a JSON array's first element, or one
    object's keys (a file of columns)."""
    value = _first_json_value(path)
    if value is None:
        return [], "the file is empty"
    if isinstance(value, list):
        return [], "the JSON array is empty"
    if not isinstance(value, dict):
        return [], f"the first record is not a JSON object (got {type(value).__name__})"
    return [str(k) for k in value], None


def _first_json_value(path: str) -> object:
    """The first JSON value in the file (inside a top-level array: its first element;
    an empty array: ``[]``; an empty file: None), decoded from a prefix of the file."""
    decoder = json.JSONDecoder()
    size = JSON_PREFIX
    with open(path, encoding="utf-8-sig") as f:
        text = ""
        while True:
            chunk = f.read(size)
            text += chunk
            body = text.lstrip()
            if body.startswith("["):
                body = body[1:].lstrip()
                if body.startswith("]"):
                    return []
            if not body and not chunk:
                return None
            try:
                return decoder.raw_decode(body)[0]
            except json.JSONDecodeError:
                if not chunk:
                    raise
            size *= 2


# --------------------------------------------------------------------------------- GPUs


def gpu_problems(field: str, gpus: list[int | str]) -> list[str]:
    """GPUs asked for that this host does not have. MIG ids are not listed by the device
    query and pass; the harness reports one that does not exist."""
    if not gpus:
        return []
    found = host_gpus()
    for g in gpus:
        text = str(g)
        if found is None:
            return [f"{field}: GPU {text} asked for, but this host has no NVIDIA GPU (neither "
                    f"NVML nor nvidia-smi answers); leave {field} out to run on the CPU"]
        if text.startswith("MIG-"):
            continue
        if (int(text) < len(found)) if text.isdigit() else (text in found):
            continue
        have = f"indices 0-{len(found) - 1}" if found else "none"
        return [f"{field}: GPU {text} is not on this host ({len(found)} GPU(s): {have}); "
                "list the GPUs `nvidia-smi -L` shows"]
    return []


@functools.lru_cache(maxsize=1)
def host_gpus() -> list[str] | None:
    """UUIDs of this host's NVIDIA GPUs in index order, from NVML, else nvidia-smi; None
    when neither answers (no driver: a CPU-only host)."""
    try:
        import pynvml  # lazy: optional on the host, and never loaded by `import llem.cli`

        pynvml.nvmlInit()
    except Exception:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return _smi_gpus()
    try:
        uuids = []
        for i in range(int(pynvml.nvmlDeviceGetCount())):
            u = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))
            uuids.append(u.decode() if isinstance(u, bytes) else str(u))
        return uuids
    except Exception:
        return _smi_gpus()
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _smi_gpus() -> list[str] | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=uuid", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


# -------------------------------------------------------------------------------- size


def size_problem(study: StudyConfig) -> str | None:
    """A study of more than :data:`MAX_RUNS_UNCONFIRMED` runs, named by its axes, for
    ``llem run`` to refuse unless ``--yes`` confirms it."""
    n, cycles = study.n_experiments(), study.study.cycles
    runs = n * cycles
    if runs <= MAX_RUNS_UNCONFIRMED:
        return None
    axes = " x ".join(f"{len(v)} {k}" for k, v in study.sweep.items()) or "1 experiment"
    return (f"sweep: {axes} x {cycles} cycle(s) = {runs} runs, more than "
            f"{MAX_RUNS_UNCONFIRMED}; check it with --dry-run, then pass --yes to run them all")
