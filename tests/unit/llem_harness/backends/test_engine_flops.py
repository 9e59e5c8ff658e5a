"""A vLLM run's result carries analytic FLOPs (the engine runs the model in its EngineCore
process, so nothing in the harness can count its ops) and says truly why its peak device
memory is null. Seen on the H100 with vLLM 0.26.0: flops null with "model exposes no
parameter count", memory null with "device memory counters exist only on CUDA" on CUDA."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from llem_harness import flops, runner
from llem_harness.backends.engine_common import engine_architecture
from llem_harness.backends.materialise import materialise
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec
from tests.unit.llem_harness import fake_pynvml


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLEM_MODEL_CACHE", str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.fixture(autouse=True)
def _engine_env(monkeypatch) -> None:
    for k in ("VLLM_WORKER_MULTIPROC_METHOD", "VLLM_LOGGING_STREAM"):
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)


def _fake_vllm() -> types.ModuleType:
    """vllm.LLM over a model directory: tokenizer from disk, every request generating
    ``max_tokens`` tokens; the hf_config is what vLLM exposes (a shape, no parameters)."""
    from transformers import AutoTokenizer

    m = types.ModuleType("vllm")

    class LLM:
        def __init__(self, model: str, **kw: Any) -> None:
            self._tok = AutoTokenizer.from_pretrained(model)
            hf = types.SimpleNamespace(vocab_size=512, hidden_size=128, num_hidden_layers=2)
            self.llm_engine = types.SimpleNamespace(
                model_config=types.SimpleNamespace(hf_config=hf, dtype="bfloat16"))

        def get_tokenizer(self) -> Any:
            return self._tok

        def generate(self, prompts: list[Any], sampling: dict[str, Any], use_tqdm: bool = True
                     ) -> list[Any]:
            n = sampling["max_tokens"]
            return [types.SimpleNamespace(
                outputs=[types.SimpleNamespace(token_ids=list(range(3, 3 + n)))], metrics=None)
                for _ in prompts]

    m.LLM = LLM
    m.SamplingParams = lambda **kw: kw
    return m


def _fake_nvml() -> types.ModuleType:
    """The fake NVML of the harness tests; calls it lacks (environment details) answer
    NOT_SUPPORTED as a real GPU may."""
    nv = fake_pynvml.make([{"uuid": "GPU-a", "power_mw": 1}])
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=1 << 30, total=80 << 30)

    def unsupported(name: str) -> Any:
        if not name.startswith("nvml"):
            raise AttributeError(name)

        def call(*a: Any) -> Any:
            raise RuntimeError(f"NVML_ERROR_NOT_SUPPORTED {name}")
        return call

    nv.__getattr__ = unsupported
    return nv


def _spec() -> RunSpec:
    cfg = ExperimentConfig.model_validate({
        "model": "builtin:tiny-llama", "backend": "vllm",
        "decoding": {"max_new_tokens": 4},
        "workload": {"dataset": "synthetic", "input_len": 8, "num_prompts": 2,
                     "batch_size": 2, "max_input_tokens": 8},
        "measurement": {"baseline_seconds": 0, "warmup_max_runs": 2, "warmup_min_runs": 1,
                        "warmup_cv_threshold": 0.9, "min_window_seconds": 0,
                        "energy_backend": "none", "timeseries": False},
        "runtime": {"runtime": "local"},
    })
    return RunSpec(experiment_id="e", run_id="r", config=cfg, config_hash=cfg.config_hash())


def test_vllm_result_has_analytic_flops_and_a_true_memory_reason(
        model_cache: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml())
    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    r = runner.run_experiment(_spec(), run_dir)

    fl = r.flops
    assert "model exposes no parameter count" not in json.dumps(fl.null_reasons)
    assert fl.method == "analytic" and fl.total and fl.prefill and fl.decode
    assert "outside the harness process" in fl.fallbacks[0]
    assert "safetensors headers" in fl.fallbacks[1]

    # the same numbers by hand from the builtin tiny-llama shape and its checkpoint
    arch = flops.model_architecture(materialise("builtin:tiny-llama"))
    d, inter, layers, vocab = 128, 256, 2, 512
    head_dim, kv = 128 // 4, 2
    matmul = layers * (2 * d * d + 2 * d * kv * head_dim + 3 * d * inter)
    norms = layers * 2 * d + d
    assert arch["num_parameters"] == matmul + norms + 2 * vocab * d  # untied builtin
    assert r.setup.num_parameters == arch["num_parameters"]
    passes = r.setup.measured_passes
    body, head, attn = matmul + norms, vocab * d, 2 * 2 * layers * 4 * head_dim
    prefill = 2 * body * 8 + 2 * head + attn * 8 * 9 / 2
    decode = 3 * 2 * (body + head) + attn * (9 + 10 + 11)
    assert fl.prefill == pytest.approx(2 * passes * prefill)
    assert fl.decode == pytest.approx(2 * passes * decode)

    mem = r.memory
    assert mem.device == "cuda" and mem.peak_allocated_bytes is None
    for k in ("peak_allocated_bytes", "peak_reserved_bytes"):
        assert "only on CUDA" not in mem.null_reasons[k]
        assert "EngineCore" in mem.null_reasons[k]


def test_engine_architecture_falls_back_to_the_engines_config(tmp_path: Path) -> None:
    """No model directory here (a hub id not in the local cache): the config vLLM loaded."""
    hf = types.SimpleNamespace(vocab_size=10, hidden_size=8, intermediate_size=16,
                               num_hidden_layers=2, num_attention_heads=2,
                               num_key_value_heads=1, model_type="llama")
    arch = engine_architecture(str(tmp_path / "not-here"), hf)
    assert arch["matmul_parameters"] == 1152
    assert "config.json" in arch["parameter_source"]
    shape_only = engine_architecture(str(tmp_path / "not-here"),
                                     types.SimpleNamespace(vocab_size=10))
    assert shape_only == {"vocab_size": 10}
    assert engine_architecture("", None) == {}


def test_unreadable_config_json_falls_back_and_never_raises(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    hf = types.SimpleNamespace(to_dict=lambda: {
        "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "model_type": "llama"})
    arch = engine_architecture(str(tmp_path), hf)
    assert arch["matmul_parameters"] == 1152 and "the engine's config" in arch["parameter_source"]
    assert engine_architecture(str(tmp_path), None) == {}
