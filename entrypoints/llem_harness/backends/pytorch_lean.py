"""The lean static-cache decode loop of the PyTorch backend (``pytorch.decode_loop``).

Greedy decoding with a static KV cache and a decode step compiled on its own (static
shapes: batch x 1 token, cache of max_input_tokens + max_new_tokens); prefill stays eager
because its shape changes with every batch's longest prompt. It removes ``generate()``'s
per-step Python work, which dominates a small model's decode step on a fast GPU.
"""

from __future__ import annotations

import itertools
import time

from llem_harness.backends.base import Batch, BatchOutput


class LeanDecodeMixin:
    """Mixed into :class:`PyTorchBackend`; uses its model, config, torch and device."""

    def _use_lean_loop(self) -> bool:  # type: ignore[misc]
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
