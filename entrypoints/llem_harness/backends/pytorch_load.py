"""Loading for the PyTorch backend: dtype, ``from_pretrained`` with quantisation and device
maps, and the ``generate`` keyword arguments that ``decoding:`` means."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llem_harness.backends.base import BackendNotInstalled, ModelNotFound


def resolve_dtype(name: str, device: str):
    import torch

    if name == "auto":
        if device == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


class LoadingMixin:
    """Mixed into :class:`PyTorchBackend`."""

    def _from_pretrained(self, name: str, cfg: Any, notes: list[str]):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(name).expanduser()
        local_only = path.exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
        kwargs: dict[str, Any] = {
            "torch_dtype": self.dtype,
            "low_cpu_mem_usage": cfg.low_cpu_mem_usage,
            "trust_remote_code": cfg.trust_remote_code,
            "local_files_only": local_only,
        }
        if cfg.attn_implementation != "auto":
            kwargs["attn_implementation"] = cfg.attn_implementation
        if cfg.quantization != "none":
            try:
                import bitsandbytes  # noqa: F401
                from transformers import BitsAndBytesConfig
            except ImportError as exc:
                raise BackendNotInstalled(
                    f"pytorch.quantization={cfg.quantization} needs bitsandbytes: "
                    "pip install bitsandbytes"
                ) from exc
            if cfg.quantization == "bnb-4bit":
                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_compute_dtype=self.dtype
                )
            else:
                kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        if cfg.device_map is not None:
            kwargs["device_map"] = cfg.device_map
        elif self.device == "cuda" and cfg.quantization != "none":
            kwargs["device_map"] = {"": 0}
        target = str(path) if path.exists() else name
        try:
            tok = AutoTokenizer.from_pretrained(target, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(target, **kwargs)
        except OSError as exc:
            raise ModelNotFound(f"model {name!r}: {str(exc).splitlines()[0]}") from exc
        tok.padding_side = "left"  # decoder-only: pad on the left so generation continues
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        if "device_map" not in kwargs:
            model = model.to(self.torch_device)
        notes.append(f"loaded with from_pretrained from {target}")
        del torch
        return model.eval(), tok

    def _generation_kwargs(self) -> dict[str, Any]:
        d = self.config.decoding
        kw: dict[str, Any] = {
            "max_new_tokens": d.max_new_tokens,
            "min_new_tokens": d.max_new_tokens if d.ignore_eos else d.min_new_tokens,
            "repetition_penalty": d.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if d.strategy == "greedy":
            kw.update(do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None)
        elif d.strategy == "sampling":
            kw.update(
                do_sample=True,
                temperature=d.temperature,
                top_p=d.top_p,
                top_k=d.top_k,
                min_p=d.min_p or None,
            )
        else:
            kw.update(do_sample=False, num_beams=d.num_beams, temperature=None, top_p=None,
                      top_k=None)
        kw.update(self.config.extra)
        return kw

    # -- batching -----------------------------------------------------------------------
