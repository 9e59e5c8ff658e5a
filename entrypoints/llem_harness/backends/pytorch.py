"""PyTorch/Transformers backend: ``from_pretrained`` (or a builtin shape) + ``generate``.

Tokenisation, padding and host->device copies happen in :meth:`make_batches`, outside the
measured window, so the window holds only what a serving system would spend per request.
"""

from __future__ import annotations

import itertools
import time
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
from llem_harness.backends.pytorch_lean import LeanDecodeMixin
from llem_harness.backends.pytorch_load import LoadingMixin, resolve_dtype
from llem_harness.backends.pytorch_probes import FlopsProbesMixin


class _StepClock:
    """Per-token timestamps for ``generate`` without adding a host sync to the decode step.

    Passed as a stopping criterion, which ``generate`` calls once per produced token with
    the tokens still on the device. On CUDA it records an event on the current stream (no
    synchronisation; the event completes when the GPU has finished that token) and the
    times are read once after the batch; on the CPU, which is synchronous anyway, it reads
    the host clock. A streamer would instead copy every step's tokens to the host, which
    forces a sync inside each step (measured on the H100: llem 0.68-0.88x of a bare loop
    with it, see benchmarks/results/h100-parity-run1).
    """

    def __init__(self, torch: Any, cuda: bool) -> None:
        self._torch, self._cuda = torch, cuda
        self._marks: list[Any] = []
        self._false: Any = None
        self._start = self._mark()

    def _mark(self) -> Any:
        if self._cuda:
            ev = self._torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        self._marks.append(self._mark())
        if self._false is None or self._false.shape[0] != input_ids.shape[0]:
            self._false = self._torch.zeros(input_ids.shape[0], dtype=self._torch.bool,
                                            device=input_ids.device)
        return self._false

    def steps(self) -> list[float]:
        """Seconds per produced token (the first includes prefill); after a sync."""
        if self._cuda:
            at = [0.0] + [self._start.elapsed_time(e) / 1000.0 for e in self._marks]
        else:
            at = [0.0] + [t - self._start for t in self._marks]
        return [b - a for a, b in itertools.pairwise(at)]


class PyTorchBackend(LoadingMixin, LeanDecodeMixin, FlopsProbesMixin, InferenceBackend):
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
        self._torch = torch
        self.dtype = resolve_dtype(self.config.pytorch.dtype, self.device)
        # visible-device index 0: the launcher restricts CUDA_VISIBLE_DEVICES
        self.torch_device = "cuda:0" if self.device == "cuda" else "cpu"
        notes: list[str] = []
        t0 = time.perf_counter()
        self._build(notes)
        if self.device == "cuda":
            torch.cuda.synchronize()
        load_time = time.perf_counter() - t0
        self._prepare_decode(notes)
        return self._describe(load_time, notes)

    def _build(self, notes: list[str]) -> None:
        """The model and its tokenizer: a builtin shape in memory, or from_pretrained."""
        cfg, model_name = self.config.pytorch, self.config.model
        if not builtin_models.is_builtin(model_name):
            self.model, self.tokenizer = self._from_pretrained(model_name, cfg, notes)
            self._hf_tokenizer = True
            return
        attn = "sdpa" if cfg.attn_implementation == "auto" else cfg.attn_implementation
        try:
            self.model = builtin_models.build_model(
                model_name, self.dtype, attn, self.torch_device, seed=self.config.decoding.seed
            )
        except KeyError as exc:
            raise ModelNotFound(str(exc.args[0])) from exc
        self.tokenizer = builtin_models.ByteTokenizer()
        self._hf_tokenizer = False

    def _prepare_decode(self, notes: list[str]) -> None:
        """generate kwargs, static cache, compile: the lean loop compiles its decode step
        alone; otherwise the forward is compiled and the first warm-up run pays for it
        (reported apart from the measured window)."""
        cfg, torch = self.config.pytorch, self._torch
        self._gen_kwargs = self._generation_kwargs()
        if cfg.cache_implementation == "static":
            self._gen_kwargs["cache_implementation"] = "static"
        self._lean = self._use_lean_loop()
        self._caches: dict[int, Any] = {}
        if self._lean and cfg.compile:
            self._decode_step = torch.compile(
                self._decode_step_impl, mode=cfg.compile_mode, fullgraph=True
            )
            notes.append(
                f"lean static-cache decode loop, decode step torch.compile(mode={cfg.compile_mode})"
            )
        elif self._lean:
            self._decode_step = self._decode_step_impl
            notes.append("lean static-cache decode loop (eager)")
        elif cfg.compile:
            self.model.forward = torch.compile(self.model.forward, mode=cfg.compile_mode)
            notes.append(f"torch.compile(mode={cfg.compile_mode}) on forward")

    def _describe(self, load_time: float, notes: list[str]) -> LoadInfo:
        mcfg = self.model.config
        n_params = sum(p.numel() for p in self.model.parameters())
        model_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "model_type")
        arch: dict[str, Any] = {k: getattr(mcfg, k, None) for k in keys}
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

    # -- running ------------------------------------------------------------------------
    def generate(self, batch: Batch) -> BatchOutput:
        from transformers import StoppingCriteriaList

        if self._lean:
            return self._generate_lean(batch)
        torch = self._torch
        if self.config.decoding.strategy == "sampling":
            torch.manual_seed(self.config.decoding.seed)
        in_len = batch.payload["input_ids"].shape[1]
        beam = self.config.decoding.strategy == "beam"
        t0 = time.perf_counter()
        clock = None if beam else _StepClock(torch, self.device == "cuda")
        extra = {"stopping_criteria": StoppingCriteriaList([clock])} if clock else {}
        with torch.inference_mode():
            out = self.model.generate(**batch.payload, **self._gen_kwargs, **extra)
        self.synchronize()
        t1 = time.perf_counter()
        new = out[:, in_len:]
        self._last_tokens = new
        per_req = self._count_new_tokens(new)
        # one step per produced token; the first step is the TTFT, the rest the ITLs
        steps = clock.steps() if clock else []
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
