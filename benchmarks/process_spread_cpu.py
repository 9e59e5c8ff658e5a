"""How far apart two processes of one identical decode loop run (CPU, no GPU needed).

The paired comparisons of benchmarks/gpu_validation.py run llem in one process and the bare
loop in another, and their intervals come from resampling rounds. If two processes of the
same code already differ by a few percent, say by where their memory landed, that
difference passes for a cost of llem's code, and no number of rounds removes it. This
script measures it where it costs nothing: ``--processes`` copies of one launch-bound
``generate`` loop (a 22-layer Llama of tiny width, so a step is Python and dispatch work as
on the H100), all pinned to one core, asked in turn in mirrored order, each against copy 0
in the same round (paired median, seeded bootstrap interval).

    python benchmarks/process_spread_cpu.py [--processes 6] [--rounds 30] [--cpu 1]

A copy whose interval excludes 1 differs from copy 0 as a process. That is why
gpu_validation has ``--processes``.

``--llem-copies M`` asks the H100's open question, whether being llem's process slows the
same loop (its imports, a finished llem run, its threads; gpu_validation's ``inproc-own``):
M more copies first do one full llem run on the same shape (window_cost_cpu's
``loaded_context``), then time the same ``generate`` on their own seeded model
(``--llem-side bare``) or llem's whole measured window (``--llem-side window``). Copy
``M + j`` pairs with plain copy ``j``, and the interval of ``llem_process_over_plain``
resamples the pairs first, then the rounds (gpu_validation.median_ci95_clustered), so the
spread between processes is in it.

    python benchmarks/process_spread_cpu.py --processes 4 --llem-copies 4 [--llem-side bare]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from window_cost_cpu import SHAPE, bare_generate  # noqa: E402  the same shape and call


def worker(batch: int, new_tokens: int, llem: str | None = None) -> int:
    """One copy: build the model (seeded: every copy has the same weights and prompts),
    then one timed ``generate`` per line on stdin. ``llem`` (bare | window): first one
    full llem run in this process, then time ``generate`` on the own model (bare) or llem's
    measured window (window, seconds per pass)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    timed_window = None
    if llem is not None:
        from window_cost_cpu import loaded_context, sides

        ctx = loaded_context(batch, new_tokens)
        timed_window = sides(ctx, new_tokens)["llem-window"] if llem == "window" else None
    cfg = LlamaConfig(**SHAPE, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                      tie_word_embeddings=False, attn_implementation="sdpa")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(3, SHAPE["vocab_size"], (batch, 32),
                        generator=torch.Generator().manual_seed(1))

    def generate() -> float:
        if timed_window is not None:
            return timed_window()
        t = time.perf_counter()
        bare_generate(model, ids, new_tokens)
        return time.perf_counter() - t

    generate()
    generate()
    print("ready", flush=True)
    for _ in sys.stdin:
        print(generate(), flush=True)
    return 0


def run(processes: int, rounds: int, cpu: int, batch: int, new_tokens: int,
        llem_copies: int = 0, llem_side: str = "bare") -> dict[str, Any]:
    argv = ["taskset", "-c", str(cpu), sys.executable, __file__, "--worker",
            "--batch", str(batch), "--new-tokens", str(new_tokens)]
    argvs = [argv] * processes + [[*argv, "--llem", llem_side]] * llem_copies
    procs: list[subprocess.Popen[str]] = []
    try:
        for a in argvs:
            procs.append(subprocess.Popen(a, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True))
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker exited (rc {p.wait()})")
        times: list[list[float]] = [[] for _ in procs]
        for r in range(rounds):
            for i in (range(len(procs)) if r % 2 == 0 else reversed(range(len(procs)))):
                procs[i].stdin.write("go\n")
                procs[i].stdin.flush()
                times[i].append(float(procs[i].stdout.readline()))
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    out = spread(times[:processes], rounds, batch, new_tokens)
    if llem_copies:
        out |= llem_process(times[:processes], times[processes:], llem_side)
    return out


def spread(times: list[list[float]], rounds: int, batch: int, new_tokens: int
           ) -> dict[str, Any]:
    """Each plain copy against copy 0 in the same round."""
    from gpu_validation import median_ci95

    copies = []
    processes = len(times)
    for i, ts in enumerate(times):
        pairs = [a / b for a, b in zip(ts, times[0], strict=True)]
        copies.append({"process": i, "median_s": statistics.median(ts),
                       "over_process_0": statistics.median(pairs),
                       "over_process_0_ci95": median_ci95(pairs) if i else [1.0, 1.0]})
    ratios = [c["over_process_0"] for c in copies]
    return {"processes": processes, "rounds": rounds, "batch": batch,
            "new_tokens": new_tokens, "copies": copies,
            "spread_pct": 100 * (max(ratios) - min(ratios)),
            "copies_apart_from_0": sum(1 for c in copies[1:]
                                       if not c["over_process_0_ci95"][0] <= 1.0
                                       <= c["over_process_0_ci95"][1])}


def llem_process(plain: list[list[float]], llem: list[list[float]], side: str
                 ) -> dict[str, Any]:
    """Throughput of llem's copies over plain copies (plain time / llem time, paired by
    round, llem copy j with plain copy j % len(plain)); the interval resamples pairs of
    processes, then rounds."""
    from gpu_validation import median_ci95_clustered

    groups = [[p / q for p, q in zip(plain[j % len(plain)], ts, strict=True)]
              for j, ts in enumerate(llem)]
    return {"llem_side": side, "llem_copies": len(llem),
            "llem_process_over_plain": statistics.median(x for g in groups for x in g),
            "llem_process_over_plain_ci95": median_ci95_clustered(groups),
            "llem_process_over_plain_by_pair": [statistics.median(g) for g in groups]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--cpu", type=int, default=1, help="the core every copy is pinned to")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--llem-copies", type=int, default=0,
                    help="more copies that first do one full llem run (see the docstring)")
    ap.add_argument("--llem-side", choices=("bare", "window"), default="bare",
                    help="what llem's copies time: generate on their own model, or llem's "
                         "measured window")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--llem", choices=("bare", "window"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.batch, args.new_tokens, args.llem)
    print(json.dumps(run(args.processes, args.rounds, args.cpu, args.batch,
                         args.new_tokens, args.llem_copies, args.llem_side)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
