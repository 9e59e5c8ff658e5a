"""Models built from a config in code: no hub, seeded, deterministic.

``builtin:tiny-llama`` is the embedded default (runs in ~0.1 s on a CPU) so the quickstart
and CI work anywhere. ``builtin:llama-1.1b`` has the TinyLlama-1.1B shape for GPU
validation without downloading weights: energy and speed depend on shapes, not values.
"""

from __future__ import annotations

from typing import Any

BUILTIN_PREFIX = "builtin:"

SHAPES: dict[str, dict[str, Any]] = {
    "tiny-llama": dict(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    ),
    "llama-1.1b": dict(
        vocab_size=32000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=2048,
    ),
}

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
_BYTE_OFFSET = 3


def is_builtin(model: str) -> bool:
    return model.startswith(BUILTIN_PREFIX)


def shape_of(model: str) -> dict[str, Any]:
    name = model[len(BUILTIN_PREFIX) :]
    if name not in SHAPES:
        raise KeyError(f"unknown builtin model {model!r}; choose from {sorted(SHAPES)}")
    return SHAPES[name]


def build_model(model: str, dtype: Any, attn_implementation: str, device: str, seed: int = 0):
    """Random-init Llama of the named shape, seeded so every run builds the same weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        **shape_of(model),
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        tie_word_embeddings=False,
        attn_implementation=attn_implementation,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        m = LlamaForCausalLM(cfg)
    return m.to(dtype=dtype).eval()


class ByteTokenizer:
    """UTF-8 byte tokenizer for builtin models (ids 3..258 are bytes; 0 pad, 1 bos, 2 eos)."""

    pad_token_id = PAD_ID
    bos_token_id = BOS_ID
    eos_token_id = EOS_ID

    def encode(self, text: str, max_tokens: int) -> list[int]:
        ids = [BOS_ID] + [b + _BYTE_OFFSET for b in text.encode("utf-8")]
        return ids[:max_tokens]

    def decode(self, ids: list[int]) -> str:
        data = bytes(i - _BYTE_OFFSET for i in ids if _BYTE_OFFSET <= i < 256 + _BYTE_OFFSET)
        return data.decode("utf-8", errors="replace")
