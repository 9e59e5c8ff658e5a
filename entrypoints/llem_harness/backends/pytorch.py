"""PyTorch/Transformers backend: ``from_pretrained`` (or a builtin shape) + ``generate``.

Tokenisation, padding and host->device copies happen in :meth:`make_batches`, outside the
measured window, so the window holds only what a serving system would spend per request.
"""

from __future__ import annotations

import itertools
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
                "pytorch backend needs torch and transformers: "
                "pip install 'llenergymeasure[pytorch]'"
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
        self._lean = self._use_lean_loop()
        self._caches: dict[int, Any] = {}
        if self._lean:
            # Decode step compiled on its own (static shapes: batch x 1 token, cache of
            # max_input_tokens + max_new_tokens); prefill stays eager because its shape
            # changes with every batch's longest prompt.
            if cfg.compile:
                self._decode_step = torch.compile(
                    self._decode_step_impl, mode=cfg.compile_mode, fullgraph=True
                )
                notes.append(
                    "lean static-cache decode loop, decode step "
                    f"torch.compile(mode={cfg.compile_mode})"
                )
            else:
                self._decode_step = self._decode_step_impl
                notes.append("lean static-cache decode loop (eager)")
        elif cfg.compile:
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

    def token_space(self) -> tuple[int, set[int]]:
        vocab = int(self.model.config.vocab_size)
        if self._hf_tokenizer:
            special = set(self.tokenizer.all_special_ids)
        else:
            tok = self.tokenizer
            special = {tok.pad_token_id, tok.bos_token_id, tok.eos_token_id}
        return vocab, special

    def make_batches(self, prompts: list[Any]) -> list[Batch]:
        torch = self._torch
        w = self.config.workload
        encoded = [list(p) if isinstance(p, list) else self._encode(p) for p in prompts]
        pairs = enumerate(zip(prompts, encoded, strict=True))
        reqs = [Request(i, p, len(ids)) for i, (p, ids) in pairs]
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

    # -- lean decode loop ---------------------------------------------------------------
    def _use_lean_loop(self) -> bool:
        cfg, d = self.config.pytorch, self.config.decoding
        eligible = (
            d.strategy == "greedy"
            and d.ignore_eos
            and d.repetition_penalty == 1.0
            and not self.config.extra
            and cfg.cache_implementation == "static"
            and cfg.device_map is None
        )
        if cfg.decode_loop == "lean" and not eligible:
            raise ValueError(
                "pytorch.decode_loop=lean needs decoding.strategy=greedy, ignore_eos=true, "
                "repetition_penalty=1, no extra:, cache_implementation=static, no device_map"
            )
        if cfg.decode_loop == "auto":
            return eligible and cfg.compile
        return cfg.decode_loop == "lean"

    def _decode_step_impl(self, input_ids, position_ids, cache_position, attention_mask, cache):
        out = self.model(
            input_ids=input_ids,
            position_ids=position_ids,
            cache_position=cache_position,
            attention_mask=attention_mask,
            past_key_values=cache,
            use_cache=True,
        )
        return out.logits[:, -1, :].argmax(dim=-1)

    def _static_cache(self, batch_size: int):
        from transformers import StaticCache

        max_len = self.config.workload.max_input_tokens + self.config.decoding.max_new_tokens
        cache = self._caches.get(batch_size)
        if cache is None:
            cache = StaticCache(config=self.model.config, max_cache_len=max_len)
            self._caches[batch_size] = cache
        else:
            cache.reset()
        return cache, max_len

    def _generate_lean(self, batch: Batch) -> BatchOutput:
        """Greedy generation with a static KV cache and a compiled decode step.

        Timing without extra syncs: a CUDA event is recorded after each produced token and
        read once after the batch; TTFT and ITL come from those events (on CPU, from the
        host clock, which is synchronous there anyway).
        """
        torch = self._torch
        ids, mask = batch.payload["input_ids"], batch.payload["attention_mask"]
        bsz, in_len = ids.shape
        n_new = self.config.decoding.max_new_tokens
        cache, max_len = self._static_cache(bsz)
        dev = ids.device
        full_mask = torch.ones((bsz, max_len), dtype=mask.dtype, device=dev)
        full_mask[:, :in_len] = mask
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        last_pos = pos[:, -1:]
        steps = torch.arange(1, n_new, device=dev)
        dec_pos = last_pos + steps.unsqueeze(0)  # (B, n_new-1)
        dec_cache_pos = in_len + steps - 1  # (n_new-1,)
        tokens = torch.empty((bsz, n_new), dtype=torch.long, device=dev)
        cuda = self.device == "cuda"
        events = [torch.cuda.Event(enable_timing=True) for _ in range(n_new + 1)] if cuda else []
        host_t: list[float] = []
        t0 = time.perf_counter()
        # no_grad, not inference_mode: the static cache outlives the call and is reset
        # in place between batches, which inference tensors forbid.
        with torch.no_grad():
            if cuda:
                events[0].record()
            out = self.model(
                input_ids=ids,
                attention_mask=full_mask[:, :in_len],
                position_ids=pos,
                cache_position=torch.arange(in_len, device=dev),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            tokens[:, 0] = out.logits[:, -1, :].argmax(dim=-1)
            del out
            if cuda:
                events[1].record()
            else:
                host_t.append(time.perf_counter())
            mark = getattr(torch.compiler, "cudagraph_mark_step_begin", None)
            for i in range(n_new - 1):
                if mark is not None and cuda:
                    mark()
                nxt = self._decode_step(
                    tokens[:, i : i + 1],
                    dec_pos[:, i : i + 1],
                    dec_cache_pos[i : i + 1],
                    full_mask,
                    cache,
                )
                tokens[:, i + 1] = nxt
                if cuda:
                    events[i + 2].record()
                else:
                    host_t.append(time.perf_counter())
        self.synchronize()
        t1 = time.perf_counter()
        if cuda:
            marks = [events[0].elapsed_time(e) / 1000.0 for e in events[1:]]
        else:
            marks = [t - t0 for t in host_t]
        ttft = [marks[0]] * bsz
        itl = [b - a for a, b in itertools.pairwise(marks)]
        per_req = [n_new] * bsz
        self._last_tokens = tokens
        return BatchOutput(
            input_tokens=batch.input_tokens,
            output_tokens=sum(per_req),
            per_request_output_tokens=per_req,
            e2e_s=t1 - t0,
            ttft_s=ttft,
            itl_s=itl,
            step_times_s=[marks[0], *itl],
        )

    # -- running ------------------------------------------------------------------------
    def generate(self, batch: Batch) -> BatchOutput:
        if self._lean:
            return self._generate_lean(batch)
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
        self._last_tokens = new
        per_req = self._count_new_tokens(new)
        # one step per streamed token; the first step is the TTFT, the rest the ITLs
        steps = [b - a for a, b in itertools.pairwise([t0, *clock.times])]
        return BatchOutput(
            input_tokens=batch.input_tokens,
            output_tokens=sum(per_req),
            per_request_output_tokens=per_req,
            e2e_s=t1 - t0,
            ttft_s=[steps[0]] * len(batch.requests) if steps else None,
            itl_s=steps[1:] if steps else None,
            step_times_s=steps or None,
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

    # -- FLOPs probes (run once, outside every energy window) -------------------------------
    def flops_probes(self, batch: Batch) -> list[Any]:
        """Callables for :func:`llem_harness.flops.best_estimate`, in priority order."""
        from llem_harness import flops

        torch = self._torch
        payload = batch.payload
        rows = payload["input_ids"].shape[0]

        def profiler() -> flops.Probe | None:
            from transformers import DynamicCache

            with torch.inference_mode():
                cache = DynamicCache()
                holder: dict[str, Any] = {}

                def _prefill() -> None:
                    holder["out"] = self._raw_forward(
                        **payload, past_key_values=cache, use_cache=True, logits_to_keep=1
                    )

                pre = flops.profile_callable(_prefill)
                nxt = holder["out"].logits[:, -1:, :].argmax(-1)
                mask = torch.cat([payload["attention_mask"], torch.ones_like(nxt)], dim=-1)
                dec = flops.profile_callable(
                    lambda: self._raw_forward(
                        input_ids=nxt, attention_mask=mask, past_key_values=cache, use_cache=True
                    )
                )
            if pre is None:
                return None
            return flops.Probe(pre, int(payload["attention_mask"].sum()), dec, rows, "profiler")

        def calflops() -> flops.Probe | None:
            fl = flops.calflops_forward(self.model, payload)
            if fl is None:
                return None
            return flops.Probe(fl, int(payload["attention_mask"].sum()), None, rows, "calflops")

        return [profiler, calflops]

    def _raw_forward(self, **kw: Any) -> Any:
        """The uncompiled forward (a probe must not trigger compilation or CUDA graphs)."""
        fwd = getattr(self.model.forward, "_torchdynamo_orig_callable", None)
        if fwd is not None:
            return fwd(**kw)
        return self.model(**kw)

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
