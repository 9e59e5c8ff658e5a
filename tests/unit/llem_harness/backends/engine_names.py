"""Names of the real engine classes: introspected when the engine imports, else pinned JSON.

The pinned lists (data/<engine>_<version>_names.json) are generated from the engines' own
source by tools/gen_engine_names.py, so a mapped name that an engine version dropped fails
the mapping tests here rather than on a GPU machine.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"


def pinned(engine: str) -> list[dict]:
    """Every pinned name file of ``engine`` (each version llem claims to support)."""
    files = sorted(DATA.glob(f"{engine}_*_names.json"))
    if not files:
        raise FileNotFoundError(f"no pinned names for {engine} in {DATA}")
    return [json.loads(f.read_text()) for f in files]


def _fields(cls: type) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    if hasattr(cls, "model_fields"):  # pydantic
        return set(cls.model_fields)
    if hasattr(cls, "__struct_fields__"):  # msgspec
        return set(cls.__struct_fields__)
    return set(inspect.signature(cls).parameters)


def live_vllm() -> dict[str, set[str]] | None:
    try:
        vllm = importlib.import_module("vllm")
        speculative = importlib.import_module("vllm.config").SpeculativeConfig
    except Exception:
        return None
    return {
        "EngineArgs": _fields(vllm.EngineArgs),
        "SamplingParams": _fields(vllm.SamplingParams),
        "SpeculativeConfig": _fields(speculative),
    }


def live_tensorrt() -> dict[str, set[str]] | None:
    try:
        trt = importlib.import_module("tensorrt_llm")
        llmapi = importlib.import_module("tensorrt_llm.llmapi")
        llm_args = importlib.import_module("tensorrt_llm.llmapi.llm_args")
        plugin = importlib.import_module("tensorrt_llm.plugin")
    except Exception:
        return None
    args_cls = getattr(llm_args, "TrtLlmArgs", None) or llm_args.LlmArgs
    return {
        "LlmArgs": _fields(args_cls),
        "BuildConfig": _fields(trt.BuildConfig),
        "PluginConfig": _fields(plugin.PluginConfig),
        "KvCacheConfig": _fields(llmapi.KvCacheConfig),
        "QuantConfig": _fields(llmapi.QuantConfig),
        "ExtendedRuntimePerfKnobConfig": _fields(llmapi.ExtendedRuntimePerfKnobConfig),
        "SchedulerConfig": _fields(llmapi.SchedulerConfig),
        "SamplingParams": _fields(trt.SamplingParams),
    }


def name_sets(engine: str) -> list[tuple[str, dict[str, set[str]]]]:
    """(label, class -> names) for the installed engine, else for every pinned version."""
    live = live_vllm() if engine == "vllm" else live_tensorrt()
    if live is not None:
        return [("installed", live)]
    return [
        (f"pinned {d['version']}", {k: set(v) for k, v in d["classes"].items()})
        for d in pinned(engine)
    ]


def missing(mapped: set[str], available: set[str]) -> set[str]:
    return mapped - available
