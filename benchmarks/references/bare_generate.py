"""Independent reference for llem's PyTorch path: a bare ``model.generate`` loop.

Shares nothing with llem: it imports neither ``llem``, ``llem_harness`` nor
``llem_schema``, builds its own model from the 1.1B Llama shape (or loads a saved
directory), makes its own synthetic prompts (``input_len`` random token ids, no padding),
passes no streamer, logits processor or callback, and reads the NVML energy counter itself.

Two modes, the two settings llem is compared in:
  eager           ``generate`` with the dynamic cache (transformers' default)
  static-compile  ``cache_implementation="static"`` with a ``CompileConfig``: transformers
                  then compiles the decoding forward itself (``mode="reduce-overhead"``,
                  CUDA graphs), the documented recipe of transformers 4.47+. Wrapping
                  ``model.forward`` in ``torch.compile`` by hand, the older recipe, fails on
                  transformers 5.17 ("accessing tensor output of CUDAGraphs that has been
                  overwritten by a subsequent run", seen on the H100)

Run as a worker so a benchmark can alternate its segments with llem's in one run
(drift between separately timed loops on the GPU machine reaches ±30%):

    python bare_generate.py --serve [--mode eager|static-compile] [--model DIR]
    stdin:  {"batch": 32, "seconds": 5}        stdout: one JSON object per request
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from cpu_probe import CpuProbe, pinned_launcher
from nvml_counter import Counter, serve

SHAPE_1B = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                max_position_embeddings=2048)


def build_model(model_dir: str | None, mode: str, device: str = "cuda:0",
                shape: dict[str, int] | None = None) -> Any:
    """The reference's own model: loaded from ``model_dir``, else built from ``shape`` (the
    1.1B Llama shape) on ``device``, seeded, bf16."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if model_dir:
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").to(device)
    else:
        cfg = LlamaConfig(**(shape or SHAPE_1B), pad_token_id=0, bos_token_id=1,
                          eos_token_id=2, tie_word_embeddings=False,
                          attn_implementation="sdpa")
        torch.manual_seed(1234)
        with torch.device(device):
            model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.eval()
    if mode == "static-compile":
        from transformers import CompileConfig

        model.generation_config.cache_implementation = "static"
        model.generation_config.compile_config = CompileConfig(mode="reduce-overhead")
    return model



class Worker:
    def __init__(self, model: Any, input_len: int, new_tokens: int) -> None:
        import torch

        self.torch, self.model = torch, model
        self.input_len, self.new_tokens = input_len, new_tokens
        self.counter = Counter()
        self._gen = torch.Generator().manual_seed(42)
        self._warm: set[int] = set()

    def _generate(self, ids: Any) -> int:
        torch = self.torch
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids),
                max_new_tokens=self.new_tokens, min_new_tokens=self.new_tokens,
                do_sample=False, pad_token_id=0,
            )
        return (out.shape[1] - ids.shape[1]) * out.shape[0]

    def segment(self, batch: int, seconds: float) -> dict[str, Any]:
        torch = self.torch
        vocab = self.model.config.vocab_size
        ids = torch.randint(3, vocab, (batch, self.input_len), generator=self._gen).to("cuda:0")
        warm_s = 0.0
        if batch not in self._warm:
            t = time.perf_counter()
            for _ in range(3):
                self._generate(ids)
            warm_s = time.perf_counter() - t
            self._warm.add(batch)
        torch.cuda.synchronize()
        with pinned_launcher(), CpuProbe() as probe:
            e0, t0 = self.counter.read_j(), time.perf_counter()
            tokens = calls = 0
            while time.perf_counter() - t0 < seconds:
                tokens += self._generate(ids)
                calls += 1
            torch.cuda.synchronize()
            dt, joules = time.perf_counter() - t0, self.counter.read_j() - e0
        return {"batch": batch, "tokens": tokens, "calls": calls, "seconds": dt,
                "tok_per_s": tokens / dt, "energy_j": joules, "j_per_token": joules / tokens,
                "warmup_s": warm_s, "cpu": probe.result}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", action="store_true", help="read requests on stdin")
    ap.add_argument("--mode", choices=["eager", "static-compile"], default="eager")
    ap.add_argument("--model", help="saved model directory (default: build the 1.1B shape)")
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    import torch
    import transformers

    worker = Worker(build_model(args.model, args.mode), args.input_len, args.new_tokens)
    ready = {"ready": True, "mode": args.mode, "torch": torch.__version__,
             "transformers": transformers.__version__}
    print(json.dumps(ready), flush=True)
    if not args.serve:
        print(json.dumps(worker.segment(args.batch, args.seconds)), flush=True)
        return 0
    serve(worker.segment)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
