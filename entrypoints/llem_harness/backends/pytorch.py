"""PyTorch/Transformers backend: ``from_pretrained`` (or a builtin shape) + ``generate``.

Tokenisation, padding and host->device copies happen in :meth:`make_batches`, outside the
measured window, so the window holds only what a serving system would spend per request.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from llem_harness.backends import builtin_models
from llem_harness.backends.base import (
    BackendNotInstalled,
    Batch,
    BatchOutput,
    InferenceBackend,
    LoadInfo,
    ModelNotFound,
    Request,
)


class _StepClock:
    """Minimal ``generate`` streamer recording a timestamp per produced token step.

    ``generate`` copies each step's tokens to the host before calling ``put``, so the
    timestamp is taken after the device finished that step; no extra synchronisation is
    added to the hot path.
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # the first call carries the prompt
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def resolve_dtype(name: str, device: str):
    import torch

    if name == "auto":
        if device == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


class PyTorchBackend(InferenceBackend):
    name = "pytorch"

    @classmethod
    def version(cls) -> dict[str, str]:
        out: dict[str, str] = {}
        for pkg in ("torch", "transformers", "accelerate", "bitsandbytes"):
            try:
                mod = __import__(pkg)
                out[pkg] = str(getattr(mod, "__version__", "unknown"))
            except Exception:
                continue
        return out

    # -- loading ----------------------------------------------------------------------
    def load(self) -> LoadInfo:
        try:
            import torch
            import transformers  # noqa: F401
        except ImportError as exc:
            raise BackendNotInstalled(
                "pytorch backend needs torch and transformers: pip install 'llenergymeasure[pytorch]'"
            ) from exc
        cfg = self.config.pytorch
        self._torch = torch
        self.dtype = resolve_dtype(cfg.dtype, self.device)
        self.torch_device = (
            f"cuda:{0}" if self.device == "cuda" else "cpu"
        )  # visible-device index 0: the launcher restricts CUDA_VISIBLE_DEVICES
        t0 = time.perf_counter()
        notes: list[str] = []
        model_name = self.config.model
        if builtin_models.is_builtin(model_name):
            attn = "sdpa" if cfg.attn_implementation == "auto" else cfg.attn_implementation
            try:
                self.model = builtin_models.build_model(
                    model_name, self.dtype, attn, self.torch_device, seed=self.config.decoding.seed
                )
            except KeyError as exc:
                raise ModelNotFound(str(exc.args[0])) from exc
            self.tokenizer = builtin_models.ByteTokenizer()
            self._hf_tokenizer = False
        else:
            self.model, self.tokenizer = self._from_pretrained(model_name, cfg, notes)
            self._hf_tokenizer = True
        if self.device == "cuda":
            torch.cuda.synchronize()
        load_time = time.perf_counter() - t0

        self._gen_kwargs = self._generation_kwargs()
        if cfg.cache_implementation == "static":
            self._gen_kwargs["cache_implementation"] = "static"
        if cfg.compile:
            # Compile the forward; the first generate (in warmup) pays the compile time,
            # which the runner reports apart from the measured window.
            self.model.forward = torch.compile(self.model.forward, mode=cfg.compile_mode)
            notes.append(f"torch.compile(mode={cfg.compile_mode}) on forward")

        mcfg = self.model.config
        n_params = sum(p.numel() for p in self.model.parameters())
        model_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        arch = {
            k: getattr(mcfg, k, None)
            for k in (
                "vocab_size",
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "model_type",
            )
        }
        arch["num_parameters"] = n_params
        embed = self.model.get_input_embeddings()
        arch["embedding_parameters"] = embed.weight.numel() if embed is not None else 0
        return LoadInfo(
            load_time_s=load_time,
            num_parameters=n_params,
            model_bytes=model_bytes,
            architecture=arch,
            dtype=str(self.dtype).replace("torch.", ""),
            attn_implementation=getattr(mcfg, "_attn_implementation", None),
            notes=notes,
        )

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
    def _encode(self, prompt: str) -> list[int]:
        max_in = self.config.workload.max_input_tokens
        if self._hf_tokenizer:
            return self.tokenizer(prompt, truncation=True, max_length=max_in)["input_ids"]
        return self.tokenizer.encode(prompt, max_in)

    def make_batches(self, prompts: list[str]) -> list[Batch]:
        torch = self._torch
        w = self.config.workload
        encoded = [self._encode(p) for p in prompts]
        reqs = [Request(i, p, len(ids)) for i, (p, ids) in enumerate(zip(prompts, encoded))]
        groups: list[list[Request]] = []
        if w.batching == "sorted":
            reqs_sorted = sorted(reqs, key=lambda r: r.input_tokens)
            groups = [reqs_sorted[i : i + w.batch_size] for i in range(0, len(reqs), w.batch_size)]
        elif w.batching == "dynamic":
            budget = w.token_budget or 0
            cur: list[Request] = []
            for r in sorted(reqs, key=lambda r: r.input_tokens):
                longest = max([x.input_tokens for x in cur] + [r.input_tokens])
                if cur and (len(cur) + 1) * longest > budget:
                    groups.append(cur)
                    cur = []
                cur.append(r)
            if cur:
                groups.append(cur)
        else:
            groups = [reqs[i : i + w.batch_size] for i in range(0, len(reqs), w.batch_size)]
        batches = []
        for g in groups:
            longest = max(r.input_tokens for r in g)
            ids = torch.full((len(g), longest), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(g), longest), dtype=torch.long)
            for row, r in enumerate(g):
                seq = encoded[r.index]
                ids[row, longest - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                mask[row, longest - len(seq) :] = 1
            payload = {
                "input_ids": ids.to(self.torch_device),
                "attention_mask": mask.to(self.torch_device),
            }
            batches.append(Batch(requests=g, payload=payload))
        return batches

    # -- running ------------------------------------------------------------------------
    def generate(self, batch: Batch) -> BatchOutput:
        torch = self._torch
        clock = _StepClock()
        if self.config.decoding.strategy == "sampling":
            torch.manual_seed(self.config.decoding.seed)
        in_len = batch.payload["input_ids"].shape[1]
        streamer = clock if self.config.decoding.strategy != "beam" else None
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(**batch.payload, **self._gen_kwargs, streamer=streamer)
        self.synchronize()
        t1 = time.perf_counter()
        new = out[:, in_len:]
        per_req = self._count_new_tokens(new)
        ttft = itl = None
        if clock.times:
            ttft = [clock.times[0] - t0] * len(batch.requests)
            itl = [b - a for a, b in zip(clock.times, clock.times[1:])]
        return BatchOutput(
            input_tokens=batch.input_tokens,
            output_tokens=sum(per_req),
            per_request_output_tokens=per_req,
            e2e_s=t1 - t0,
            ttft_s=ttft,
            itl_s=itl,
            step_times_s=[b - a for a, b in zip([t0, *clock.times], clock.times)] or None,
        )

    def _count_new_tokens(self, new: Any) -> list[int]:
        d = self.config.decoding
        rows = new.tolist()
        if d.ignore_eos:
            return [len(r) for r in rows]
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        counts = []
        for r in rows:
            n = len(r)
            for i, tok in enumerate(r):
                if tok == eos:
                    n = i + 1
                    break
                if tok == pad and pad != eos:
                    n = i
                    break
            counts.append(n)
        return counts

    def prefill(self, batch: Batch) -> int:
        """One forward over the prompts with a fresh KV cache, keeping only the last logits,
        i.e. what ``generate`` does before its first decode step."""
        torch = self._torch
        with torch.inference_mode():
            try:
                self.model(**batch.payload, use_cache=True, logits_to_keep=1)
            except TypeError:  # older transformers without logits_to_keep
                self.model(**batch.payload, use_cache=True)
        return batch.input_tokens

    def synchronize(self) -> None:
        if self.device == "cuda":
            self._torch.cuda.synchronize()

    def reset_peak_memory(self) -> None:
        if self.device == "cuda":
            self._torch.cuda.reset_peak_memory_stats()

    def peak_memory(self) -> tuple[int | None, int | None]:
        if self.device == "cuda":
            t = self._torch.cuda
            return int(t.max_memory_allocated()), int(t.max_memory_reserved())
        return None, None

    def unload(self) -> None:
        self.model = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()
