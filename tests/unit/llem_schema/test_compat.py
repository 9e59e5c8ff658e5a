"""validate_backend_config: settings an engine cannot run fail on the host, one line each."""

from __future__ import annotations

import pytest

from llem_schema.compat import validate_backend_config
from llem_schema.config import ExperimentConfig


def cfg(**kw) -> ExperimentConfig:
    return ExperimentConfig(**kw)


def test_defaults_are_valid_on_every_backend():
    for backend in ("pytorch", "vllm", "tensorrt"):
        assert validate_backend_config(cfg(backend=backend), n_gpus=1) == []


def test_vllm_rejects_beam_search():
    errors = validate_backend_config(
        cfg(backend="vllm", decoding={"strategy": "beam", "num_beams": 4}), None)
    assert len(errors) == 1 and errors[0].startswith("decoding.strategy")
    assert validate_backend_config(
        cfg(backend="tensorrt", decoding={"strategy": "beam", "num_beams": 4}), None) == []


@pytest.mark.parametrize("backend", ["vllm", "tensorrt"])
def test_parallelism_wider_than_listed_gpus(backend):
    section = {"tensor_parallel_size": 2, "pipeline_parallel_size": 2}
    errors = validate_backend_config(
        cfg(backend=backend, runtime={"gpus": [0, 1, 2]}, **{backend: section}), n_gpus=8)
    assert len(errors) == 1
    assert f"{backend}.tensor_parallel_size (2)" in errors[0] and "lists 3" in errors[0]
    ok = cfg(backend=backend, runtime={"gpus": [0, 1, 2, 3]}, **{backend: section})
    assert validate_backend_config(ok, n_gpus=1) == []  # listed GPUs win over the count


def test_parallelism_against_visible_gpus_when_none_listed():
    c = cfg(backend="vllm", vllm={"tensor_parallel_size": 4})
    assert "this host has 2" in validate_backend_config(c, n_gpus=2)[0]
    assert validate_backend_config(c, n_gpus=None) == []


def test_context_limits_against_workload():
    c = cfg(backend="vllm", vllm={"max_model_len": 100},
            workload={"max_input_tokens": 90}, decoding={"max_new_tokens": 20})
    assert validate_backend_config(c)[0].startswith("vllm.max_model_len (100)")
    t = cfg(backend="tensorrt", tensorrt={"max_input_len": 64, "max_seq_len": 100},
            workload={"max_input_tokens": 90}, decoding={"max_new_tokens": 20})
    errors = validate_backend_config(t)
    assert any(e.startswith("workload.max_input_tokens (90)") for e in errors)
    assert any(e.startswith("tensorrt.max_seq_len (100)") for e in errors)


def test_vllm_batched_tokens_without_chunked_prefill():
    c = cfg(backend="vllm", vllm={"enable_chunked_prefill": False, "max_model_len": 4096,
                                  "max_num_batched_tokens": 2048})
    assert validate_backend_config(c)[0].startswith("vllm.max_num_batched_tokens (2048)")


def test_tensorrt_engine_limits():
    beam = cfg(backend="tensorrt", tensorrt={"max_beam_width": 2},
               decoding={"strategy": "beam", "num_beams": 4})
    assert validate_backend_config(beam)[0].startswith("tensorrt.max_beam_width (2)")
    tokens = cfg(backend="tensorrt", tensorrt={"max_num_tokens": 256, "max_input_len": 512})
    assert "enable_chunked_context" in validate_backend_config(tokens)[0]
    chunked = cfg(backend="tensorrt", tensorrt={"max_num_tokens": 256, "max_input_len": 512,
                                                "enable_chunked_context": True})
    assert validate_backend_config(chunked) == []
    batch = cfg(backend="tensorrt", tensorrt={"max_batch_size": 2}, workload={"batch_size": 4})
    assert validate_backend_config(batch)[0].startswith("workload.batch_size (4)")
    contiguous = cfg(backend="tensorrt", tensorrt={"paged_kv_cache": False,
                                                   "enable_chunked_context": True})
    assert "paged_kv_cache" in validate_backend_config(contiguous)[0]


def test_errors_are_single_lines_naming_a_field():
    c = cfg(backend="tensorrt", runtime={"gpus": [0]},
            tensorrt={"tensor_parallel_size": 2, "max_beam_width": 1, "max_batch_size": 1,
                      "max_input_len": 8},
            decoding={"strategy": "beam", "num_beams": 2})
    errors = validate_backend_config(c)
    assert len(errors) >= 3
    for e in errors:
        assert "\n" not in e
        assert e.split()[0].split(".")[0] in {"tensorrt", "workload", "decoding"}
