"""Names of the real engine classes: introspected when the engine imports, else pinned JSON.

The pinned lists (data/<engine>_<version>_names.json) are generated from the engines' own
source by tools/gen_engine_names.py, so a mapped name that an engine version dropped fails
the mapping tests here rather than on a GPU machine.

vLLM pins its own torch and ~40 dependencies, so it is not installed beside llem: CI puts the
real vLLM into a venv of its own (.ci/vllm-setup.sh) and points ``LLEM_VLLM_PYTHON`` at that
interpreter; :func:`external_vllm` asks it for the real class fields.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import os
import subprocess
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


_INTROSPECT = """\
import json, sys
sys.path.insert(0, {here!r})
import engine_names, vllm
live = engine_names.live_vllm()
if live is None:
    sys.exit("vllm imported but its config classes did not")
print(json.dumps({{"version": vllm.__version__,
                  "classes": {{k: sorted(v) for k, v in live.items()}}}}))
"""


@functools.lru_cache(maxsize=1)
def external_vllm() -> tuple[str, dict[str, set[str]]] | None:
    """(version, class -> fields) from the interpreter in ``LLEM_VLLM_PYTHON``; None when unset.

    A set variable whose interpreter cannot introspect vLLM is an error, not a silent fallback
    to the pinned list: CI sets it precisely so the real classes are checked.
    """
    py = os.environ.get("LLEM_VLLM_PYTHON")
    if not py:
        return None
    code = _INTROSPECT.format(here=str(Path(__file__).parent))
    p = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=600,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if p.returncode != 0:
        raise RuntimeError(f"LLEM_VLLM_PYTHON={py}: could not introspect vllm: "
                           f"{p.stderr.strip().splitlines()[-1:] or p.returncode}")
    data = json.loads(p.stdout.strip().splitlines()[-1])
    return data["version"], {k: set(v) for k, v in data["classes"].items()}


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
    """(label, class -> names) for the installed engine, else for the real classes in
    ``LLEM_VLLM_PYTHON`` (vLLM) and every pinned version."""
    live = live_vllm() if engine == "vllm" else live_tensorrt()
    if live is not None:
        return [("installed", live)]
    sets = []
    ext = external_vllm() if engine == "vllm" else None
    if ext is not None:
        sets.append((f"real vllm {ext[0]} (LLEM_VLLM_PYTHON)", ext[1]))
    return sets + [
        (f"pinned {d['version']}", {k: set(v) for k, v in d["classes"].items()})
        for d in pinned(engine)
    ]


def missing(mapped: set[str], available: set[str]) -> set[str]:
    return mapped - available
