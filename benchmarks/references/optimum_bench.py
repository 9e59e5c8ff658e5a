"""The peer: optimum-benchmark 0.6.0 on a saved model, the same workload as llem's synthetic.

Standalone (no llem import). optimum-benchmark 0.6.0 imports only with transformers 4.57,
huggingface-hub 0.36, datasets 4.4 and tokenizers 0.22: run this with those first on
PYTHONPATH (the benchmark installs them to a target of their own). Its PyTorch backend
generates from random input ids of ``--input-len`` tokens (no padding) with
``min_new_tokens = max_new_tokens``; the comparable throughput is the batch's output
tokens over the mean ``generate`` latency.

    python optimum_bench.py --model DIR --batch 32 --out FILE [--device cuda]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> dict[str, Any]:
    import optimum_benchmark as ob

    backend = ob.PyTorchConfig(
        model=args.model, device=args.device, device_ids="0" if args.device == "cuda" else None,
        torch_dtype="bfloat16", attn_implementation="sdpa", task="text-generation",
        no_weights=False,
    )
    scenario = ob.InferenceConfig(
        latency=True, memory=False, energy=args.energy, warmup_runs=args.warmup,
        iterations=args.iterations, duration=args.duration,
        input_shapes={"batch_size": args.batch, "sequence_length": args.input_len},
        generate_kwargs={"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens},
    )
    config = ob.BenchmarkConfig(name=f"llem-peer-b{args.batch}", backend=backend,
                                scenario=scenario,
                                launcher=ob.InlineConfig(device_isolation=False))
    report = ob.Benchmark.launch(config).to_dict()
    gen = report["generate"]["latency"]
    mean_s = gen["mean"]
    return {
        "peer": "optimum-benchmark", "version": getattr(ob, "__version__", None) or _version(),
        "batch": args.batch, "input_len": args.input_len, "new_tokens": args.new_tokens,
        "generate_latency_mean_s": mean_s, "generate_count": gen.get("count"),
        "tok_per_s": args.batch * args.new_tokens / mean_s,
        "report_generate_throughput": report["generate"].get("throughput"),
        "report_decode_throughput": report["decode"].get("throughput"),
        "energy": report["generate"].get("energy"),
        "report": report,
    }


def _version() -> str | None:
    from importlib.metadata import version

    return version("optimum-benchmark")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--energy", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    res = run(args)
    Path(args.out).write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps({k: res[k] for k in ("peer", "version", "batch", "tok_per_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
