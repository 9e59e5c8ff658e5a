"""Engine backends start on a harness process that has not touched CUDA, and builtin models
reach them as a real Hugging Face directory (model + byte-level BPE tokenizer)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from llem_harness.backends.materialise import materialise
from llem_harness.phases import setup
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec
from tests.unit.llem_harness import fake_pynvml


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLEM_MODEL_CACHE", str(tmp_path / "models"))
    return tmp_path / "models"


def test_builtin_materialises_to_a_loadable_hf_directory(model_cache: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = materialise("builtin:tiny-llama")
    assert d.parent == model_cache and materialise("builtin:tiny-llama") == d  # cached
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d)
    assert len(tok) == model.config.vocab_size == 512
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    ids = tok("Energy per token, measured.")["input_ids"]
    assert ids[0] == 1 and tok.decode(ids, skip_special_tokens=True) == \
        "Energy per token, measured."
    # every id the model can emit decodes (engines detokenise their output)
    assert all(isinstance(tok.decode([i]), str) for i in range(3, 512))
    # same weights as the in-memory builtin (seeded)
    from llem_harness.backends.builtin_models import build_model

    ref = build_model("builtin:tiny-llama", model.dtype, "sdpa", "cpu")
    assert all((a == b).all() for a, b in zip(ref.state_dict().values(),
                                               model.state_dict().values(), strict=True))


class _CudaTouched(RuntimeError):
    pass


def _fake_vllm(log: list[str], model_dir_seen: list[str]) -> types.ModuleType:
    from transformers import AutoTokenizer

    m = types.ModuleType("vllm")

    class LLM:
        def __init__(self, model: str, **kw: Any) -> None:
            log.append("engine-start")
            model_dir_seen.append(model)
            self._tok = AutoTokenizer.from_pretrained(model)
            hf = types.SimpleNamespace(vocab_size=512, hidden_size=128, num_hidden_layers=2)
            self.llm_engine = types.SimpleNamespace(
                model_config=types.SimpleNamespace(hf_config=hf, dtype="bfloat16"))

        def get_tokenizer(self) -> Any:
            return self._tok

    m.LLM = LLM
    m.SamplingParams = lambda **kw: kw
    return m


@pytest.fixture(autouse=True)
def _engine_env(monkeypatch) -> None:
    """The backend sets vLLM's start-up variables in os.environ: undone after each test."""
    for k in ("VLLM_WORKER_MULTIPROC_METHOD", "VLLM_LOGGING_STREAM"):
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)


def test_vllm_engine_starts_before_any_cuda_call(model_cache: Path, monkeypatch) -> None:
    """Fails if the harness asks torch about CUDA (which poisons fork for vLLM's
    EngineCore) anywhere between process start and the engine's construction."""
    import torch

    log: list[str] = []

    def touched(name: str) -> Any:
        def f(*a: Any, **k: Any) -> Any:
            log.append(f"cuda:{name}")
            return False if name == "is_available" else 0
        return f

    for name in ("is_available", "device_count", "init", "_lazy_init", "synchronize",
                 "reset_peak_memory_stats", "current_device"):
        monkeypatch.setattr(torch.cuda, name, touched(name))
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml.make([{"uuid": "GPU-a",
                                                                    "power_mw": 1}]))
    seen: list[str] = []
    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm(log, seen))
    cfg = ExperimentConfig.model_validate({
        "model": "builtin:tiny-llama", "backend": "vllm",
        "workload": {"dataset": "synthetic", "input_len": 8, "num_prompts": 2,
                     "batch_size": 2, "max_input_tokens": 8}})
    spec = RunSpec(experiment_id="e", run_id="r", config=cfg, config_hash=cfg.config_hash())
    ctx = setup.load(spec, model_cache, setup.Session())
    assert log[0] == "engine-start", log
    assert not [x for x in log if x.startswith("cuda:")], log
    assert ctx.device == "cuda" and ctx.indices == [0]
    assert Path(seen[0]) == materialise("builtin:tiny-llama")
    assert [r.input_tokens for b in ctx.batches for r in b.requests] == [8, 8]
    ctx.backend.synchronize()
    assert not [x for x in log if x.startswith("cuda:")], log


def test_vllm_engine_is_spawned_and_logs_to_stderr(model_cache: Path, monkeypatch) -> None:
    """A forked EngineCore inherits the harness's OpenMP/tokenizer thread locks (it hung on
    the H100); the engine's log must reach the run's log (stderr), not the discarded stdout."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml.make([{"uuid": "GPU-a",
                                                                    "power_mw": 1}]))
    env_at_start: dict[str, str | None] = {}
    fake = _fake_vllm([], [])
    real_llm = fake.LLM

    def llm(**kw: Any) -> Any:
        for k in ("VLLM_WORKER_MULTIPROC_METHOD", "VLLM_LOGGING_STREAM"):
            env_at_start[k] = os.environ.get(k)
        return real_llm(**kw)

    fake.LLM = llm
    monkeypatch.setitem(sys.modules, "vllm", fake)
    cfg = ExperimentConfig.model_validate({
        "model": "builtin:tiny-llama", "backend": "vllm",
        "workload": {"dataset": "synthetic", "input_len": 8, "num_prompts": 2,
                     "batch_size": 2, "max_input_tokens": 8}})
    spec = RunSpec(experiment_id="e", run_id="r", config=cfg, config_hash=cfg.config_hash())
    setup.load(spec, model_cache, setup.Session())
    assert env_at_start == {"VLLM_WORKER_MULTIPROC_METHOD": "spawn",
                            "VLLM_LOGGING_STREAM": "ext://sys.stderr"}
