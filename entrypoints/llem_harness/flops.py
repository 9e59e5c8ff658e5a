"""FLOPs of the measured workload and the method that produced the number.

Architecture formula for decoder-only transformers (Kaplan et al. 2020, per token):
``2 * N_nonembed + 2 * n_layers * context * d_attn`` forward FLOPs, where the second term
is the attention score/value work at the token's context length. When the architecture is
unknown the coarse ``2 * params * tokens`` is used and recorded as ``params``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FlopsEstimate:
    prefill: float
    decode: float
    method: str

    @property
    def total(self) -> float:
        return self.prefill + self.decode


def _attention_width(arch: dict[str, Any]) -> int | None:
    return arch.get("hidden_size")


def estimate(
    arch: dict[str, Any],
    prompt_lengths: list[int],
    output_lengths: list[int],
) -> FlopsEstimate | None:
    """FLOPs for prompts of the given lengths generating the given outputs."""
    n_params = arch.get("num_parameters")
    if not n_params:
        return None
    layers, width = arch.get("num_hidden_layers"), _attention_width(arch)
    if layers and width:
        n_nonembed = n_params - (arch.get("embedding_parameters") or 0)
        prefill = decode = 0.0
        for p_len, o_len in zip(prompt_lengths, output_lengths):
            # prefill: p_len tokens, token i attends to i+1 positions (causal)
            prefill += 2 * n_nonembed * p_len + 2 * layers * width * p_len * (p_len + 1) / 2
            # decode: o_len-1 further forwards (the first output token comes from prefill)
            for k in range(1, o_len):
                decode += 2 * n_nonembed + 2 * layers * width * (p_len + k)
        return FlopsEstimate(prefill=prefill, decode=decode, method="architecture")
    prefill = 2.0 * n_params * sum(prompt_lengths)
    decode = 2.0 * n_params * sum(max(o - 1, 0) for o in output_lengths)
    return FlopsEstimate(prefill=prefill, decode=decode, method="params")
