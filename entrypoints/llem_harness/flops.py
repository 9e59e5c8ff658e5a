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
        for p_len, o_len in zip(prompt_lengths, output_lengths, strict=False):
            # prefill: p_len tokens, token i attends to i+1 positions (causal)
            prefill += 2 * n_nonembed * p_len + 2 * layers * width * p_len * (p_len + 1) / 2
            # decode: o_len-1 further forwards (the first output token comes from prefill)
            for k in range(1, o_len):
                decode += 2 * n_nonembed + 2 * layers * width * (p_len + k)
        return FlopsEstimate(prefill=prefill, decode=decode, method="architecture")
    prefill = 2.0 * n_params * sum(prompt_lengths)
    decode = 2.0 * n_params * sum(max(o - 1, 0) for o in output_lengths)
    return FlopsEstimate(prefill=prefill, decode=decode, method="params")


# -- measured FLOPs (outside every energy window) -----------------------------------------
@dataclass
class Probe:
    """FLOPs of one prefill forward over a batch and one decode step of the same batch."""

    prefill_flops: float
    prefill_tokens: int
    decode_step_flops: float | None
    rows: int
    method: str


def sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
               out_shape: Any = None, **kwargs: Any) -> int:
    """Forward FLOPs of scaled-dot-product attention from its input shapes, grouped-query
    attention included (fewer key/value heads than query heads: torch's own formula asserts
    equal heads and failed on the Llama shape's 32/4 heads on the H100): ``Q K^T`` and
    ``softmax(.) V``, two FLOPs per multiply-add, every query against every key (a causal
    mask is not discounted, as in torch's formula table)."""
    b, hq, sq, d = query_shape
    sk, dv = key_shape[-2], value_shape[-1]
    return 2 * b * hq * sq * sk * d + 2 * b * hq * sq * sk * dv


def _attention_formulas(torch: Any) -> dict[Any, Any]:
    """The fused SDPA kernels (CUDA's flash / memory-efficient / cuDNN, the CPU's flash)."""
    aten = torch.ops.aten
    names = ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
             "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu")
    return {getattr(aten, n): sdpa_flops for n in names if hasattr(aten, n)}


def profile_callable(fn: Any) -> float | None:
    """FLOPs of the ops ``fn`` runs, counted by ``torch.utils.flop_counter.FlopCounterMode``
    from each op's input shapes (matmuls, convolutions and the SDPA attention kernels).

    Why not ``torch.profiler(with_flops=True)``, used before: its first use in a process
    starts Kineto, and every later eager ``generate`` in that process ran 15-30% slower on
    the H100, CPU activity only or not (benchmarks/results/h100-session5: the first llem run
    of a worker at or above a bare loop's speed, every run after its first FLOPs probe
    below). A dispatch mode leaves nothing behind when it exits, and it also counts
    attention, which the profiler's formula table did not.
    """
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    counter = FlopCounterMode(display=False, custom_mapping=_attention_formulas(torch))
    with counter:
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return float(counter.get_total_flops()) or None


def extrapolate(probe: Probe, total_input_tokens: int, total_output_tokens: int,
                num_requests: int) -> FlopsEstimate:
    """Scale one probed batch to the whole measured window: prefill per input token,
    decode per generated token after the first (which prefill produces)."""
    prefill = probe.prefill_flops / max(probe.prefill_tokens, 1) * total_input_tokens
    decode_tokens = max(total_output_tokens - num_requests, 0)
    step = probe.decode_step_flops
    if step is None:  # calflops: one forward; a decode token costs about a prefill token
        step = probe.prefill_flops / max(probe.prefill_tokens, 1) * probe.rows
    decode = step / max(probe.rows, 1) * decode_tokens
    return FlopsEstimate(prefill=prefill, decode=decode, method=probe.method)


def calflops_forward(model: Any, inputs: dict[str, Any]) -> float | None:
    """One forward's FLOPs via calflops, if installed."""
    try:
        from calflops import calculate_flops
    except ImportError:
        return None
    flops_, _macs, _params = calculate_flops(
        model=model, kwargs=dict(inputs), print_results=False, output_as_string=False
    )
    return float(flops_) if flops_ else None


def best_estimate(
    probe_fns: list[Any],
    arch: dict[str, Any],
    prompt_lengths: list[int],
    output_lengths: list[int],
) -> tuple[FlopsEstimate | None, list[str]]:
    """Walk the chain flop_counter -> calflops -> architecture -> params; return the first that
    works and why the earlier ones did not."""
    why: list[str] = []
    n_req = len(prompt_lengths)
    for fn in probe_fns:
        try:
            probe = fn()
        except Exception as exc:
            why.append(f"{getattr(fn, '__name__', 'probe')}: {type(exc).__name__}: {exc}")
            continue
        if probe is not None:
            return extrapolate(probe, sum(prompt_lengths), sum(output_lengths), n_req), why
        why.append(f"{getattr(fn, '__name__', 'probe')}: unavailable")
    return estimate(arch, prompt_lengths, output_lengths), why
