"""Independent reference for llem's vLLM path: a bare ``LLM.generate`` loop.

Imports neither ``llem``, ``llem_harness`` nor ``llem_schema``: it builds ``vllm.LLM`` on
a model directory, makes its own synthetic prompts (``input_len`` seeded random token ids
given as ``TokensPrompt``), generates exactly ``new_tokens`` per request (``ignore_eos``,
greedy) and reads the NVML energy counter itself around each timed segment.

As a worker (so a benchmark can alternate its segments with llem's on one GPU):

    python vllm_bare.py --model DIR --serve [--enforce-eager] [--gpu-memory-utilization 0.4]
    stdin: {"batch": 32, "seconds": 6}           stdout: one JSON object per request
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from nvml_counter import Counter, serve


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        from vllm import LLM, SamplingParams

        t = time.perf_counter()
        self.llm = LLM(model=args.model, dtype="bfloat16", seed=0,
                       enforce_eager=args.enforce_eager,
                       gpu_memory_utilization=args.gpu_memory_utilization)
        self.start_s = time.perf_counter() - t
        self.params = SamplingParams(max_tokens=args.new_tokens, min_tokens=args.new_tokens,
                                     ignore_eos=True, temperature=0.0)
        self.vocab = self.llm.llm_engine.model_config.hf_config.vocab_size
        self.input_len = args.input_len
        self.counter = Counter()
        self._rng = random.Random(42)
        self._warm: set[int] = set()

    def _prompts(self, batch: int) -> list[Any]:
        from vllm.inputs import TokensPrompt

        return [TokensPrompt(prompt_token_ids=[self._rng.randrange(3, self.vocab)
                                               for _ in range(self.input_len)])
                for _ in range(batch)]

    def _generate(self, prompts: list[Any]) -> int:
        outs = self.llm.generate(prompts, self.params, use_tqdm=False)
        return sum(len(c.token_ids) for o in outs for c in o.outputs)

    def segment(self, batch: int, seconds: float) -> dict[str, Any]:
        prompts = self._prompts(batch)
        if batch not in self._warm:
            for _ in range(2):
                self._generate(prompts)
            self._warm.add(batch)
        e0, t0 = self.counter.read_j(), time.perf_counter()
        tokens = calls = 0
        while time.perf_counter() - t0 < seconds:
            tokens += self._generate(prompts)
            calls += 1
        dt, joules = time.perf_counter() - t0, self.counter.read_j() - e0
        return {"batch": batch, "tokens": tokens, "calls": calls, "seconds": dt,
                "tok_per_s": tokens / dt, "energy_j": joules, "j_per_token": joules / tokens}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--enforce-eager", action="store_true")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.4)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--batches", default="1,32,128")
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    import vllm

    worker = Worker(args)
    print(json.dumps({"ready": True, "vllm": vllm.__version__, "start_s": worker.start_s}),
          flush=True)
    if not args.serve:
        for b in args.batches.split(","):
            print(json.dumps(worker.segment(int(b), args.seconds)), flush=True)
        return 0
    serve(worker.segment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
