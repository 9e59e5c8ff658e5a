"""vLLM mapping: every first-class field reaches the right engine argument, and every
emitted name exists in the real vLLM classes (installed, else the pinned list)."""

from __future__ import annotations

import os

import pytest
from engine_names import external_vllm, missing, name_sets, pinned

from llem_harness.backends import vllm_mapping as vm
from llem_schema.backends.vllm import VLLMConfig
from llem_schema.config import ExperimentConfig

FULL = {
    "dtype": "bfloat16",
    "quantization": "fp8",
    "kv_cache_dtype": "fp8",
    "tensor_parallel_size": 2,
    "pipeline_parallel_size": 2,
    "data_parallel_size": 1,
    "distributed_executor_backend": "mp",
    "disable_custom_all_reduce": True,
    "gpu_memory_utilization": 0.8,
    "kv_cache_memory_bytes": 1 << 30,
    "block_size": 32,
    "enable_prefix_caching": False,
    "cpu_offload_gb": 1.0,
    "max_num_seqs": 64,
    "max_num_batched_tokens": 4096,
    "max_model_len": 2048,
    "enable_chunked_prefill": True,
    "scheduling_policy": "fcfs",
    "async_scheduling": True,
    "enforce_eager": True,
    "compilation_config": {"cudagraph_mode": "FULL"},
    "max_cudagraph_capture_size": 256,
    "speculative": {"method": "eagle3", "model": "/m/eagle", "num_speculative_tokens": 3,
                    "options": {"draft_tensor_parallel_size": 1}},
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
    "n": 2,
    "seed": 7,
    "trust_remote_code": True,
}


def full_config(**decoding) -> ExperimentConfig:
    return ExperimentConfig(backend="vllm", vllm=FULL, decoding=decoding or {})


def test_every_first_class_field_is_mapped():
    """A new VLLMConfig field without a mapping would silently do nothing: fail instead."""
    handled = set(vm.ENGINE_FIELD_MAP) | {
        "speculative", "seed", "presence_penalty", "frequency_penalty", "n"
    }
    assert set(VLLMConfig.model_fields) == handled


def test_fields_reach_their_engine_argument():
    kw = vm.engine_kwargs(full_config(), model_path="/models/x")
    assert kw["model"] == "/models/x"
    for field, arg in vm.ENGINE_FIELD_MAP.items():
        assert kw[arg] == FULL[field], field
    assert kw["seed"] == 7
    assert kw["disable_log_stats"] is False
    assert kw["speculative_config"] == {
        "method": "eagle3", "model": "/m/eagle", "num_speculative_tokens": 3,
        "draft_tensor_parallel_size": 1,
    }


def test_unset_optionals_are_left_to_vllm():
    kw = vm.engine_kwargs(ExperimentConfig(backend="vllm"))
    for arg in ("quantization", "max_num_seqs", "max_model_len", "block_size",
                "enable_prefix_caching", "speculative_config"):
        assert arg not in kw
    assert kw["seed"] == 0  # decoding.seed is the default seed


@pytest.mark.parametrize("label,names", name_sets("vllm"), ids=lambda x: str(x)[:20])
def test_engine_names_exist(label, names):
    assert not missing(vm.engine_arg_names(), names["EngineArgs"]), label
    assert not missing(set(vm.engine_kwargs(full_config())), names["EngineArgs"]), label
    spec = vm.engine_kwargs(full_config())["speculative_config"]
    assert not missing(set(spec), names["SpeculativeConfig"]), label


@pytest.mark.parametrize("label,names", name_sets("vllm"), ids=lambda x: str(x)[:20])
def test_sampling_names_exist(label, names):
    kw = vm.sampling_kwargs(full_config(strategy="sampling", temperature=0.7))
    assert set(kw) == set(vm.SAMPLING_ARGS)
    assert not missing(set(kw), names["SamplingParams"]), label


def test_drift_check_catches_a_removed_name():
    """The check above is not vacuous: drop one mapped name from the pinned list."""
    names = set(pinned("vllm")[0]["classes"]["EngineArgs"])
    names.discard("max_num_seqs")
    assert missing(vm.engine_arg_names(), names) == {"max_num_seqs"}


def test_pinned_list_records_its_version():
    for data in pinned("vllm"):
        assert data["version"] != "unknown"
        assert "max_num_seqs" in data["classes"]["EngineArgs"]


@pytest.mark.skipif(not os.environ.get("LLEM_VLLM_PYTHON"),
                    reason="LLEM_VLLM_PYTHON unset (CI sets it: .ci/vllm-setup.sh)")
def test_pinned_list_equals_the_real_public_fields():
    """tools/gen_engine_names.py reads vLLM's source with ast; the real classes must agree,
    or the pinned list that guards machines without vLLM is wrong."""
    ext = external_vllm()
    assert ext is not None
    version, real = ext
    same = [d for d in pinned("vllm") if d["version"] == version]
    assert same, f"no pinned list for the installed vllm {version}: run tools/gen_engine_names.py"
    for cls, names in same[0]["classes"].items():
        public = {n for n in real[cls] if not n.startswith("_")}
        assert set(names) == public, (cls, sorted(public ^ set(names)))
    assert any(label.startswith("real vllm") for label, _ in name_sets("vllm"))


def test_greedy_is_temperature_zero():
    # the default temperature (1.0; any other is refused without sampling) becomes 0.0
    kw = vm.sampling_kwargs(ExperimentConfig(backend="vllm"))
    assert kw["temperature"] == 0.0
    assert kw["top_k"] == -1


def test_sampling_maps_decoding_and_disabled_top_k():
    cfg = ExperimentConfig(backend="vllm", decoding={
        "strategy": "sampling", "temperature": 0.7, "top_p": 0.9, "top_k": 0, "min_p": 0.05,
        "repetition_penalty": 1.1, "max_new_tokens": 64, "min_new_tokens": 8,
        "ignore_eos": False, "seed": 3})
    kw = vm.sampling_kwargs(cfg)
    assert (kw["temperature"], kw["top_p"], kw["top_k"], kw["min_p"]) == (0.7, 0.9, -1, 0.05)
    assert (kw["max_tokens"], kw["min_tokens"], kw["ignore_eos"], kw["seed"]) == (64, 8, False, 3)
    assert kw["repetition_penalty"] == 1.1
    cfg.decoding.top_k = 40
    assert vm.sampling_kwargs(cfg)["top_k"] == 40


def test_prefill_generates_one_token_and_clips_min_tokens():
    cfg = ExperimentConfig(backend="vllm", decoding={"min_new_tokens": 8})
    kw = vm.sampling_kwargs(cfg, max_tokens=1)
    assert kw["max_tokens"] == 1 and kw["min_tokens"] == 1


def test_extra_passes_through():
    cfg = ExperimentConfig(backend="vllm", vllm={"max_num_seqs": 8},
                           extra={"max_num_seqs": 16, "swap_space": 4,
                                  "sampling": {"stop": ["\n"]}})
    kw = vm.engine_kwargs(cfg)
    assert kw["max_num_seqs"] == 16 and kw["swap_space"] == 4 and "sampling" not in kw
    assert vm.sampling_kwargs(cfg)["stop"] == ["\n"]


def test_describe_is_json_ready():
    import json

    text = json.dumps(vm.describe_engine_args(full_config()))
    assert '"max_tokens": 1' in text  # the prefill variant is shown too


def test_speculative_needs_a_draft_model():
    with pytest.raises(ValueError, match=r"vllm\.speculative\.model"):
        VLLMConfig(speculative={"method": "draft_model", "num_speculative_tokens": 2})
    VLLMConfig(speculative={"method": "ngram", "num_speculative_tokens": 2})


def test_docs_table_lists_every_field():
    from pathlib import Path

    doc = (Path(__file__).parents[4] / "docs" / "parameters.md").read_text()
    section = doc.split("## vLLM")[1].split("## TensorRT-LLM")[0]
    for field in VLLMConfig.model_fields:
        assert f"`vllm.{field}" in section, field
