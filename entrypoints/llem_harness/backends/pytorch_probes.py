"""FLOPs probes of the PyTorch backend, run once after every energy window has closed."""

from __future__ import annotations

from typing import Any

from llem_harness.backends.base import Batch


class FlopsProbesMixin:
    """Mixed into :class:`PyTorchBackend`: callables for ``flops.best_estimate``."""

    def flops_probes(self, batch: Batch) -> list[Any]:
        """Callables for :func:`llem_harness.flops.best_estimate`, in priority order."""
        from llem_harness import flops

        torch = self._torch
        payload = batch.payload
        rows = payload["input_ids"].shape[0]

        def flop_counter() -> flops.Probe | None:
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
            return flops.Probe(pre, int(payload["attention_mask"].sum()), dec, rows,
                               "flop_counter")

        def calflops() -> flops.Probe | None:
            fl = flops.calflops_forward(self.model, payload)
            if fl is None:
                return None
            return flops.Probe(fl, int(payload["attention_mask"].sum()), None, rows, "calflops")

        return [flop_counter, calflops]

    def _raw_forward(self, **kw: Any) -> Any:
        """The uncompiled forward (a probe must not trigger compilation or CUDA graphs)."""
        fwd = getattr(self.model.forward, "_torchdynamo_orig_callable", None)
        if fwd is not None:
            return fwd(**kw)
        return self.model(**kw)
