"""TensorRT-LLM mapping: every first-class field reaches the right (nested) engine argument,
and every emitted name exists in the real TensorRT-LLM classes (installed, else pinned)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from engine_names import missing, name_sets, pinned

from llem_harness.backends import tensorrt_mapping as tm
from llem_harness.backends.tensorrt import materialize
from llem_schema.backends.tensorrt import TensorRTConfig
from llem_schema.config import ExperimentConfig

FULL = {
    "dtype": "float16",
    "quantization": "int4_awq",
    "quant_group_size": 64,
    "kv_cache_dtype": "fp8",
    "tensor_parallel_size": 2,
    "pipeline_parallel_size": 1,
    "max_batch_size": 8,
    "max_num_tokens": 4096,
    "opt_num_tokens": 1024,
    "max_input_len": 1024,
    "max_seq_len": 2048,
    "max_beam_width": 4,
    "paged_kv_cache": True,
    "use_paged_context_fmha": True,
    "use_fp8_context_fmha": False,
    "multiple_profiles": True,
    "fast_build": True,
    "kv_cache_free_gpu_memory_fraction": 0.8,
    "kv_cache_max_tokens": 100000,
    "tokens_per_block": 64,
    "enable_block_reuse": True,
    "enable_chunked_context": True,
    "capacity_scheduler_policy": "MAX_UTILIZATION",
    "context_chunking_policy": "EQUAL_PROGRESS",
    "cuda_graphs": True,
    "cuda_graph_cache_size": 4,
    "multi_block_mode": False,
    "engine_cache_dir": "/cache",
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "length_penalty": 1.0,
    "n": 1,
    "trust_remote_code": False,
}


def full_config(**decoding) -> ExperimentConfig:
    return ExperimentConfig(backend="tensorrt", tensorrt=FULL, decoding=decoding or {})


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d


def _paths(d: dict, prefix: str = "") -> dict[str, set[str]]:
    """Nested-argument prefix -> the keys emitted at that level."""
    out: dict[str, set[str]] = {prefix: set()}
    for key, value in d.items():
        out[prefix].add(key)
        child = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and child in tm.NESTED_CLASSES:
            out.update(_paths(value, child))
    return out


def test_every_first_class_field_is_mapped():
    handled = set(tm.ENGINE_FIELD_MAP) | {
        "engine_cache_dir", "presence_penalty", "frequency_penalty", "length_penalty", "n"
    }
    assert set(TensorRTConfig.model_fields) == handled


def test_fields_reach_their_engine_argument():
    kw = tm.engine_kwargs(full_config(), model_path="/models/x")
    assert kw["model"] == "/models/x"
    translated = {
        "quantization": "W4A16_AWQ", "kv_cache_dtype": "FP8", "paged_kv_cache": "PAGED"
    }
    for f, path in tm.ENGINE_FIELD_MAP.items():
        assert _get(kw, path) == translated.get(f, FULL[f]), f


def test_greedy_beam_and_sampling():
    greedy = tm.sampling_kwargs(ExperimentConfig(backend="tensorrt"))
    assert greedy["top_k"] == 1 and greedy["temperature"] is None
    beam = tm.sampling_kwargs(ExperimentConfig(
        backend="tensorrt", decoding={"strategy": "beam", "num_beams": 3}))
    assert beam["use_beam_search"] is True and beam["best_of"] == 3 and beam["n"] == 3
    sampled = tm.sampling_kwargs(full_config(strategy="sampling", temperature=0.8, top_p=0.9,
                                             top_k=0, min_p=0.1, seed=5))
    assert (sampled["temperature"], sampled["top_p"], sampled["top_k"]) == (0.8, 0.9, 0)
    assert sampled["min_p"] == 0.1 and sampled["seed"] == 5


def test_beam_width_defaults_to_num_beams_and_fmha_follows_chunking():
    cfg = ExperimentConfig(backend="tensorrt", tensorrt={"enable_chunked_context": True},
                           decoding={"strategy": "beam", "num_beams": 4})
    kw = tm.engine_kwargs(cfg)
    assert kw["build_config"]["max_beam_width"] == 4
    assert kw["build_config"]["plugin_config"]["use_paged_context_fmha"] is True
    assert kw["build_config"]["kv_cache_type"] == "PAGED"


@pytest.mark.parametrize("label,names", name_sets("tensorrt"), ids=lambda x: str(x)[:20])
def test_engine_names_exist(label, names):
    kw = tm.engine_kwargs(full_config())
    for prefix, keys in _paths(kw).items():
        cls = tm.NESTED_CLASSES[prefix]
        assert not missing(keys, names[cls]), (label, cls)
    for dotted in tm.engine_arg_paths():
        parts = dotted.split(".")
        cls = tm.NESTED_CLASSES[".".join(parts[:-1])]
        assert parts[-1] in names[cls], (label, dotted)


@pytest.mark.parametrize("label,names", name_sets("tensorrt"), ids=lambda x: str(x)[:20])
def test_sampling_names_exist(label, names):
    for decoding in ({}, {"strategy": "beam", "num_beams": 2},
                     {"strategy": "sampling", "min_p": 0.1}):
        kw = tm.sampling_kwargs(full_config(**decoding))
        assert set(kw) <= set(tm.SAMPLING_ARGS)
        assert not missing(set(kw), names["SamplingParams"]), label


def test_drift_check_catches_a_removed_name():
    names = set(pinned("tensorrt")[0]["classes"]["KvCacheConfig"])
    names.discard("free_gpu_memory_fraction")
    keys = set(tm.engine_kwargs(full_config())["kv_cache_config"])
    assert missing(keys, names) == {"free_gpu_memory_fraction"}


def test_extra_deep_merges():
    cfg = ExperimentConfig(backend="tensorrt",
                           extra={"kv_cache_config": {"host_cache_size": 1024},
                                  "sampling": {"stop": ["."]}})
    kw = tm.engine_kwargs(cfg)
    assert kw["kv_cache_config"]["host_cache_size"] == 1024
    assert kw["kv_cache_config"]["free_gpu_memory_fraction"] == 0.9
    assert tm.sampling_kwargs(cfg)["stop"] == ["."]


def test_engine_cache_key_ignores_runtime_knobs():
    base = ExperimentConfig(backend="tensorrt")
    runtime_only = ExperimentConfig(backend="tensorrt", tensorrt={
        "kv_cache_free_gpu_memory_fraction": 0.5, "cuda_graphs": True},
        decoding={"strategy": "sampling"}, workload={"batch_size": 2})
    rebuilt = ExperimentConfig(backend="tensorrt", tensorrt={"max_seq_len": 4096})
    assert tm.engine_cache_key(base) == tm.engine_cache_key(runtime_only)
    assert tm.engine_cache_key(base) != tm.engine_cache_key(rebuilt)
    assert tm.engine_cache_key(base, "1.2.0") != tm.engine_cache_key(base, "1.2.1")


class _Algo(enum.Enum):
    W4A16_AWQ = 1
    FP8 = 2


@dataclass
class _Plugin:
    use_paged_context_fmha: bool = False
    multiple_profiles: bool = False


@dataclass
class _Build:
    max_batch_size: int = 1
    max_num_tokens: int = 1
    opt_num_tokens: int = 1
    max_input_len: int = 1
    max_seq_len: int = 1
    max_beam_width: int = 1
    kv_cache_type: object = None
    plugin_config: _Plugin = field(default_factory=_Plugin)


def test_materialize_builds_config_objects():
    """Shape of the conversion with stand-in classes (the real ones need CUDA)."""
    rec = lambda **kw: SimpleNamespace(**kw)  # noqa: E731
    trt = {"BuildConfig": _Build, "QuantConfig": rec, "QuantAlgo": _Algo,
           "KvCacheConfig": rec, "ExtendedRuntimePerfKnobConfig": rec,
           "SchedulerConfig": rec, "CapacitySchedulerPolicy": SimpleNamespace(
               MAX_UTILIZATION="MU")}
    out = materialize(tm.engine_kwargs(full_config()), trt)
    assert out["build_config"].plugin_config.multiple_profiles is True
    assert out["build_config"].max_seq_len == 2048
    assert out["quant_config"].quant_algo is _Algo.W4A16_AWQ
    assert out["quant_config"].kv_cache_quant_algo is _Algo.FP8
    assert out["scheduler_config"].capacity_scheduler_policy == "MU"
    assert out["kv_cache_config"].enable_block_reuse is True


def test_docs_table_lists_every_field():
    from pathlib import Path

    doc = (Path(__file__).parents[4] / "docs" / "parameters.md").read_text()
    section = doc.split("## TensorRT-LLM")[1]
    for name in TensorRTConfig.model_fields:
        assert f"`tensorrt.{name}`" in section, name
