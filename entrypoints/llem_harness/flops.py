"""FLOPs of the measured workload and the method that produced the number.

Architecture formula for decoder-only transformers (Kaplan et al. 2020, per token):
``2 * N_nonembed + 2 * n_layers * context * d_attn`` forward FLOPs, where the second term
is the attention score/value work at the token's context length. When the architecture is
unknown the coarse ``2 * params * tokens`` is used and recorded as ``params``.

Engine backends (vLLM, TensorRT-LLM) run the model in their own process, so nothing in the
harness can count its ops; for them :func:`analytic_architecture` reads the model's
``config.json`` (and the exact parameter count from its safetensors headers where they
exist) and :func:`estimate` applies the ``analytic`` formula, per token at context ``c``::

    2 * N_matmul + 2 * 2 * n_layers * c * n_heads * head_dim

``N_matmul`` is every weight matrix of the layers (q/k/v/o with grouped-query k/v, the
MLP; the active experts of a mixture of experts) and the second term is ``Q K^T`` plus
``softmax(.) V``, as the SDPA formula of the PyTorch counter counts them. The unembedding
(``vocab * hidden``) is a matmul too but runs once per forward's last position: once per
request in prefill (``logits_to_keep=1`` / the engine's last-token logits) and once per
decode step. Prefill sums the attention over positions ``1..p`` (causal); decode step ``k``
of a request runs at context ``p + k``.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
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


def _analytic(arch: dict[str, Any], prompt_lengths: list[int], output_lengths: list[int]
              ) -> FlopsEstimate:
    """The ``analytic`` formula of the module docstring (engine backends)."""
    body = arch["matmul_parameters"]
    head = arch.get("lm_head_parameters") or 0
    attn = 2 * 2 * arch["num_hidden_layers"] * arch["attention_width"]  # per context position
    prefill = decode = 0.0
    for p_len, o_len in zip(prompt_lengths, output_lengths, strict=False):
        prefill += 2 * body * p_len + 2 * head + attn * p_len * (p_len + 1) / 2
        steps = max(o_len - 1, 0)  # the first output token comes from prefill
        # sum over k = 1..steps of the context p_len + k
        decode += 2 * (body + head) * steps + attn * (steps * p_len + steps * (steps + 1) / 2)
    return FlopsEstimate(prefill=prefill, decode=decode, method="analytic")


def estimate(
    arch: dict[str, Any],
    prompt_lengths: list[int],
    output_lengths: list[int],
) -> FlopsEstimate | None:
    """FLOPs for prompts of the given lengths generating the given outputs."""
    if arch.get("matmul_parameters") and arch.get("num_hidden_layers") \
            and arch.get("attention_width"):
        return _analytic(arch, prompt_lengths, output_lengths)
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


# -- analytic: parameter counts from config.json and safetensors headers ------------------
#: checkpoint formats whose MLP has two matrices (up, down), not gated three (gate, up, down)
UNGATED_MODEL_TYPES = frozenset({
    "gpt2", "gpt_bigcode", "gptj", "gpt_neo", "gpt_neox", "opt", "bloom", "falcon", "phi",
    "starcoder2", "mpt", "codegen", "biogpt", "xglm",
})
#: tensor names (their last two parts) of input embeddings and the unembedding
_EMBED_NAMES = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight",
                "embed_in.weight", "wpe.weight", "embed_positions.weight", "tok_embeddings.weight")
_HEAD_NAMES = ("lm_head.weight", "embed_out.weight")


def _first(cfg: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return None


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """A safetensors file's header: 8 bytes little-endian length, then that much JSON of
    ``{name: {"dtype", "shape", "data_offsets"}}`` (and ``__metadata__``). Reads the header
    only, not the tensors."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > 100 * 2**20:  # headers are kilobytes to a few megabytes
            raise ValueError(f"{path}: implausible safetensors header length {length}")
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header


def safetensors_shapes(model_dir: str | Path) -> dict[str, list[int]] | None:
    """Every weight's shape from the checkpoint's safetensors headers (the files the index
    names when there is one), or None without safetensors files."""
    root = Path(model_dir)
    index = root / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        files = [root / n for n in names]
    else:
        files = sorted(root.glob("*.safetensors"))
    if not files:
        return None
    shapes: dict[str, list[int]] = {}
    for f in files:
        shapes.update({k: list(v["shape"]) for k, v in read_safetensors_header(f).items()})
    return shapes


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's part of a config (multimodal checkpoints nest it)."""
    if "hidden_size" not in config and "n_embd" not in config and "d_model" not in config:
        for key in ("text_config", "llm_config", "language_config"):
            if isinstance(config.get(key), dict):
                return {**config[key], "tie_word_embeddings": config[key].get(
                    "tie_word_embeddings", config.get("tie_word_embeddings"))}
    return config


def analytic_architecture(config: dict[str, Any],
                          shapes: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """Architecture and parameter counts for the ``analytic`` formula from a Hugging Face
    ``config.json`` (as a dict), and from the safetensors shapes where given (the exact
    total; quantised checkpoints store packed integers, so their count comes from the
    config). Returns ``{}`` when the config lacks the transformer's shape."""
    cfg = _text_config(config)
    d = _first(cfg, "hidden_size", "n_embd", "d_model")
    layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers")
    heads = _first(cfg, "num_attention_heads", "n_head", "num_heads")
    vocab = _first(cfg, "vocab_size", "padded_vocab_size")
    if not (d and layers and heads):
        return {}
    kv = _first(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv")
    if kv is None:
        kv = 1 if cfg.get("multi_query") else heads
    head_dim = cfg.get("head_dim") or d // heads
    inter = _first(cfg, "intermediate_size", "n_inner", "ffn_dim") or 4 * d
    gated = cfg.get("model_type") not in UNGATED_MODEL_TYPES
    mlp_mats = 3 if gated else 2
    q_out = heads * head_dim
    attn = d * q_out + 2 * d * kv * head_dim + q_out * d  # q, k, v (GQA: kv heads), o
    mlp = mlp_mats * d * inter
    experts = _first(cfg, "num_local_experts", "num_experts", "n_routed_experts")
    active = cfg.get("num_experts_per_tok")
    moe_note = None
    if experts and active:
        expert_inter = cfg.get("moe_intermediate_size") or inter
        shared = (cfg.get("shared_expert_intermediate_size")
                  or (cfg.get("n_shared_experts") or 0) * expert_inter)
        routed = mlp_mats * d * expert_inter
        mlp = active * routed + mlp_mats * d * shared + d * experts  # + router
        moe_note = (f"mixture of experts: {active} of {experts} experts per token "
                    "(every layer taken as an MoE layer)")
    matmul = layers * (attn + mlp)
    embed = (vocab or 0) * d
    tied = bool(cfg.get("tie_word_embeddings", True))
    arch: dict[str, Any] = {
        "hidden_size": d, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv, "head_dim": head_dim, "intermediate_size": inter,
        "vocab_size": vocab, "model_type": cfg.get("model_type"),
        "attention_width": q_out, "lm_head_parameters": embed,
        "embedding_parameters": embed, "matmul_parameters": matmul,
        "num_parameters": matmul + embed + (0 if tied else embed),
        "parameter_source": "config.json (weight matrices; norms and biases left out)",
    }
    quantised = bool(cfg.get("quantization_config") or config.get("quantization_config"))
    if shapes and not quantised:
        total = sum(math.prod(s) for s in shapes.values())
        emb = sum(math.prod(s) for n, s in shapes.items() if n.endswith(_EMBED_NAMES))
        head = sum(math.prod(s) for n, s in shapes.items() if n.endswith(_HEAD_NAMES))
        arch["num_parameters"] = total
        arch["embedding_parameters"] = emb or embed
        arch["lm_head_parameters"] = head or embed
        # an MoE checkpoint holds every expert (per token only the active run); a multimodal
        # one holds its vision tower too: their per-token count stays the config's
        if not moe_note and cfg is config:
            arch["matmul_parameters"] = total - (emb or embed) - head
        arch["parameter_source"] = (f"safetensors headers ({total} parameters, "
                                    f"{len(shapes)} tensors)")
    elif shapes:
        arch["parameter_source"] += " (quantised checkpoint: safetensors shapes are packed)"
    if moe_note:
        arch["parameter_source"] += f"; {moe_note}"
    return arch


def model_architecture(model_dir: str | Path,
                       fallback_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`analytic_architecture` of a model directory: its config.json (else
    ``fallback_config``, e.g. the engine's loaded config) and safetensors headers."""
    root = Path(model_dir)
    cfg_file = root / "config.json"
    config = json.loads(cfg_file.read_text()) if cfg_file.is_file() else fallback_config
    if not config:
        return {}
    try:
        shapes = safetensors_shapes(root) if root.is_dir() else None
    except (OSError, ValueError, KeyError, struct.error) as exc:
        arch = analytic_architecture(config)
        if arch:
            arch["parameter_source"] += f" (safetensors unreadable: {exc})"
        return arch
    return analytic_architecture(config, shapes)


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
    why: list[str] | None = None,
) -> tuple[FlopsEstimate | None, list[str]]:
    """Walk the chain flop_counter -> calflops -> analytic/architecture -> params; return the
    first that works and why the earlier ones did not (``why`` may bring reasons already
    known, e.g. that an engine runs the model out of the harness's reach)."""
    why = list(why or [])
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
    est = estimate(arch, prompt_lengths, output_lengths)
    if est is not None and est.method == "analytic" and arch.get("parameter_source"):
        why.append(f"analytic: parameters from {arch['parameter_source']}")
    return est, why
