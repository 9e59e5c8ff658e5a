"""Analytic FLOPs for engine backends: parameter counts from config.json and safetensors
headers, and the per-token formula (2 * matmul params + 2*2*layers*context*heads*head_dim)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from llem_harness import flops

#: llama-shaped, small enough to count by hand
SMALL = {
    "model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
    "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
    "tie_word_embeddings": False,
}


def test_config_counts_match_hand_arithmetic() -> None:
    arch = flops.analytic_architecture(SMALL)
    # head_dim 8/2 = 4; q 8*8, k and v 8*(1*4) each (GQA: one kv head), o 8*8
    attn = 8 * 8 + 2 * 8 * 4 + 8 * 8
    mlp = 3 * 8 * 16  # gate, up, down
    assert arch["head_dim"] == 4 and arch["attention_width"] == 8
    assert arch["matmul_parameters"] == 2 * (attn + mlp) == 1152
    assert arch["embedding_parameters"] == arch["lm_head_parameters"] == 80
    assert arch["num_parameters"] == 1152 + 80 + 80  # untied: embedding and lm_head
    tied = flops.analytic_architecture({**SMALL, "tie_word_embeddings": True})
    assert tied["num_parameters"] == 1152 + 80 and tied["matmul_parameters"] == 1152


def test_analytic_flops_match_hand_arithmetic() -> None:
    arch = flops.analytic_architecture(SMALL)
    est = flops.estimate(arch, prompt_lengths=[3], output_lengths=[3])
    assert est is not None and est.method == "analytic"
    body, head, attn = 1152, 80, 2 * 2 * 2 * 8  # 2*2 * layers * heads*head_dim
    # prefill: 3 tokens through the layers, lm_head on the last, causal attention 1+2+3
    assert est.prefill == 2 * body * 3 + 2 * head + attn * (1 + 2 + 3)
    # decode: 2 steps (the first output token is prefill's) at context 4 and 5
    assert est.decode == 2 * (2 * (body + head)) + attn * (4 + 5)
    assert est.total == est.prefill + est.decode
    # no decode step for a one-token output
    assert flops.estimate(arch, [3], [1]).decode == 0


def test_gqa_reduces_kv_params_not_attention_flops() -> None:
    mha = flops.analytic_architecture({**SMALL, "num_key_value_heads": 2})
    gqa = flops.analytic_architecture(SMALL)
    # k and v: 8 * kv_heads*4 each per layer; one kv head fewer saves 2*8*4 per layer
    assert mha["matmul_parameters"] - gqa["matmul_parameters"] == 2 * (2 * 8 * 4)
    assert mha["attention_width"] == gqa["attention_width"]  # scores still over every q head
    missing = {k: v for k, v in SMALL.items() if k != "num_key_value_heads"}
    assert flops.analytic_architecture(missing)["num_key_value_heads"] == 2  # MHA default


def test_explicit_head_dim_and_ungated_mlp() -> None:
    arch = flops.analytic_architecture({**SMALL, "head_dim": 16})
    assert arch["attention_width"] == 32
    assert arch["matmul_parameters"] == 2 * (8 * 32 + 2 * 8 * 16 + 32 * 8 + 3 * 8 * 16)
    gpt2 = {"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 2, "n_head": 2}
    arch = flops.analytic_architecture(gpt2)
    assert arch["intermediate_size"] == 32  # 4 * hidden
    assert arch["matmul_parameters"] == 2 * (4 * 8 * 8 + 2 * 8 * 32)


def test_moe_counts_only_active_experts() -> None:
    cfg = {**SMALL, "num_local_experts": 8, "num_experts_per_tok": 2}
    arch = flops.analytic_architecture(cfg)
    attn = 8 * 8 + 2 * 8 * 4 + 8 * 8
    assert arch["matmul_parameters"] == 2 * (attn + 2 * 3 * 8 * 16 + 8 * 8)  # + router
    assert "2 of 8 experts" in arch["parameter_source"]


def test_unusable_config_gives_nothing() -> None:
    assert flops.analytic_architecture({"vocab_size": 10}) == {}
    assert flops.estimate({"vocab_size": 10}, [3], [2]) is None


def _write_safetensors_by_hand(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    """The format's own layout: u64 little-endian header length, JSON header, data."""
    sizes = {"F32": 4, "BF16": 2, "F16": 2}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype] * int(np.prod(shape))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def _llama_tensors(cfg: dict, tied: bool) -> dict[str, list[int]]:
    d, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kv = cfg["num_key_value_heads"] * d // cfg["num_attention_heads"]
    t: dict[str, list[int]] = {"model.embed_tokens.weight": [v, d], "model.norm.weight": [d]}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t.update({
            p + "self_attn.q_proj.weight": [d, d], p + "self_attn.k_proj.weight": [kv, d],
            p + "self_attn.v_proj.weight": [kv, d], p + "self_attn.o_proj.weight": [d, d],
            p + "mlp.gate_proj.weight": [inter, d], p + "mlp.up_proj.weight": [inter, d],
            p + "mlp.down_proj.weight": [d, inter],
            p + "input_layernorm.weight": [d], p + "post_attention_layernorm.weight": [d],
        })
    if not tied:
        t["lm_head.weight"] = [v, d]
    return t


def test_safetensors_count_matches_a_file_written_by_the_library(tmp_path: Path) -> None:
    save_file = pytest.importorskip("safetensors.numpy").save_file
    shapes = _llama_tensors(SMALL, tied=False)
    save_file({k: np.zeros(s, dtype=np.float32) for k, s in shapes.items()},
              str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(SMALL))
    read = flops.safetensors_shapes(tmp_path)
    assert read == shapes
    arch = flops.model_architecture(tmp_path)
    norms = 2 * 2 * 8 + 8  # two norms per layer and the final one
    assert arch["num_parameters"] == 1152 + 80 + 80 + norms
    assert arch["embedding_parameters"] == arch["lm_head_parameters"] == 80
    assert arch["matmul_parameters"] == 1152 + norms  # norms are in the exact count
    assert arch["parameter_source"].startswith("safetensors headers (1352 parameters")


def test_safetensors_sharded_by_hand_tied(tmp_path: Path) -> None:
    shapes = _llama_tensors(SMALL, tied=True)
    names = sorted(shapes)
    half = len(names) // 2
    files = {"model-00001-of-00002.safetensors": names[:half],
             "model-00002-of-00002.safetensors": names[half:]}
    for fname, part in files.items():
        _write_safetensors_by_hand(tmp_path / fname, {n: ("BF16", shapes[n]) for n in part})
    (tmp_path / "stray.safetensors").write_bytes(b"not a checkpoint the index names")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {n: f for f, part in files.items() for n in part}}))
    first = flops.read_safetensors_header(tmp_path / next(iter(files)))
    assert sorted(first) == names[:half]  # __metadata__ dropped
    assert flops.safetensors_shapes(tmp_path) == shapes
    arch = flops.model_architecture(tmp_path, {**SMALL, "tie_word_embeddings": True})
    norms = 2 * 2 * 8 + 8
    assert arch["num_parameters"] == 1152 + 80 + norms
    # tied: no lm_head tensor, but its matmul still runs (vocab x hidden)
    assert arch["lm_head_parameters"] == 80 and arch["matmul_parameters"] == 1152 + norms


def test_quantised_checkpoint_counts_from_config(tmp_path: Path) -> None:
    _write_safetensors_by_hand(tmp_path / "model.safetensors",
                               {"model.layers.0.q_proj.qweight": ("F32", [1, 1])})
    cfg = {**SMALL, "quantization_config": {"quant_method": "awq"}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    arch = flops.model_architecture(tmp_path)
    assert arch["matmul_parameters"] == 1152 and "quantised" in arch["parameter_source"]


def test_engine_chain_records_why_analytic() -> None:
    arch = flops.analytic_architecture(SMALL)
    est, why = flops.best_estimate([], arch, [3], [3], why=["flop_counter: engine"])
    assert est.method == "analytic"
    assert why[0] == "flop_counter: engine" and why[1].startswith("analytic: parameters from")


def test_nested_text_config() -> None:
    arch = flops.analytic_architecture({"model_type": "llava", "text_config": SMALL})
    assert arch["matmul_parameters"] == 1152
