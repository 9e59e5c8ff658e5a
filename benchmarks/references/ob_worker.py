"""optimum-benchmark 0.6.0 as a worker: its own scenario code, segment after segment, on a
model loaded once, so the peer can take turns with llem and the bare loop in one run.

Standalone (no llem import); run with optimum-benchmark's transformers 4.57 stack first on
PYTHONPATH, like optimum_bench.py. A one-shot ``Benchmark.launch`` loads the model inside
its scenario (``run_model_loading_tracking``) and so costs ~30 s a run: too dear to place a
peer run next to every llem segment. Here each request builds a fresh
``InferenceScenario`` and calls its unmodified ``run(backend)``: the same input generator,
warm-up, prefill and ``generate`` latency sessions (CUDA events), on one ``PyTorchBackend``
whose ``load`` runs only the first time. The first request of a batch size warms up as
optimum-benchmark does (``warmup_runs=1``); later ones at that size skip it
(``warmup_runs=0``, optimum-benchmark's own switch). Throughput is computed as in
optimum_bench.py: the batch's output tokens over the mean ``generate`` latency.

    python ob_worker.py --serve --model DIR     stdin: {"batch": 32, "seconds": 2}
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from cpu_probe import pinned_launcher
from nvml_counter import serve


class ObWorker:
    def __init__(self, model: str, input_len: int, new_tokens: int, device: str) -> None:
        import optimum_benchmark as ob
        from optimum_benchmark.backends.pytorch.backend import PyTorchBackend

        self.ob, self.input_len, self.new_tokens = ob, input_len, new_tokens
        cfg = ob.PyTorchConfig(model=model, device=device,
                               device_ids="0" if device == "cuda" else None,
                               torch_dtype="bfloat16", attn_implementation="sdpa",
                               task="text-generation", no_weights=False)
        self.backend = PyTorchBackend(cfg)
        load = self.backend.load
        self.loads = 0

        def load_once() -> None:
            if self.loads == 0:
                load()
            self.loads += 1

        self.backend.load = load_once  # type: ignore[method-assign]
        self._warm: set[int] = set()

    def segment(self, batch: int, seconds: float) -> dict[str, Any]:
        from optimum_benchmark.scenarios.inference.scenario import InferenceScenario

        warm = batch not in self._warm
        scenario = InferenceScenario(self.ob.InferenceConfig(
            latency=True, memory=False, energy=False, warmup_runs=1 if warm else 0,
            **_span(seconds),
            input_shapes={"batch_size": batch, "sequence_length": self.input_len},
            generate_kwargs={"max_new_tokens": self.new_tokens,
                             "min_new_tokens": self.new_tokens}))
        t0 = time.perf_counter()
        with pinned_launcher():  # latency and memory only: no tracker thread or process
            report = scenario.run(self.backend).to_dict()
        self._warm.add(batch)
        gen = report["generate"]["latency"]
        return {"batch": batch, "peer": "optimum-benchmark", "mode": "worker",
                "version": _version(), "warmed_up": warm,
                "tok_per_s": batch * self.new_tokens / gen["mean"],
                "generate_latency_mean_s": gen["mean"], "generate_count": gen.get("count"),
                "generate_latencies_s": gen.get("values"),
                "prefill_latency_mean_s": report["prefill"]["latency"]["mean"],
                "report_decode_throughput": report["decode"].get("throughput"),
                "load_model_s": report["load_model"]["latency"]["mean"],  # ~0 after the first
                "scenario_s": time.perf_counter() - t0}


def _span(seconds: float) -> dict[str, int]:
    """optimum-benchmark's own stopping rule (``duration`` seconds and at least
    ``iterations`` calls, either 0 to disable it); below one second, one ``generate`` call,
    as the other sides do with such a segment."""
    if seconds < 1:
        return {"iterations": 1, "duration": 0}
    return {"iterations": 2, "duration": round(seconds)}


def _version() -> str | None:
    from importlib.metadata import version

    return version("optimum-benchmark")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", action="store_true", help="read requests on stdin")
    ap.add_argument("--model", required=True, help="saved model directory (make_model.py)")
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test without a GPU")
    args = ap.parse_args()
    import torch
    import transformers

    worker = ObWorker(args.model, args.input_len, args.new_tokens, args.device)
    print(json.dumps({"ready": True, "peer": "optimum-benchmark", "version": _version(),
                      "torch": torch.__version__, "transformers": transformers.__version__}),
          flush=True)
    serve(worker.segment)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
