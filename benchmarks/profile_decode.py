"""Where does a decode step go? Diagnoses llem's PyTorch path against a bare loop (issue 12).

Runs, on one loaded builtin:llama-1.1b (bf16, sdpa) and in one process, a set of variants
that each add one thing the harness does to a bare ``model.generate`` loop, and reports
tokens/s, CPU seconds per decode step, GPU utilisation (NVML, sampled in a thread that
reads only utilisation) and, for two variants, a ``torch.profiler`` table of the top CPU
ops. It is a diagnostic, not a reference: the independent references are in
``benchmarks/references/``.

    python benchmarks/profile_decode.py --out DIR [--batches 1,32] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NEW = 128


class UtilSampler:
    """GPU utilisation every 50 ms (nvmlDeviceGetUtilizationRates only)."""

    def __init__(self) -> None:
        import pynvml

        pynvml.nvmlInit()
        self.nv = pynvml
        self.h = pynvml.nvmlDeviceGetHandleByIndex(0)
        self.vals: list[float] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.vals.append(float(self.nv.nvmlDeviceGetUtilizationRates(self.h).gpu))

    def __enter__(self) -> UtilSampler:
        self._t.start()
        return self

    def __exit__(self, *a: object) -> None:
        self._stop.set()
        self._t.join()


def timed(fn: Callable[[], int], seconds: float) -> dict[str, Any]:
    import torch

    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    toks = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    with UtilSampler() as us:
        calls = 0
        while time.perf_counter() - t0 < seconds:
            toks += fn()
            calls += 1
        torch.cuda.synchronize()
    dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "tok_per_s": toks / dt,
        "seconds": dt,
        "calls": calls,
        "cpu_s_per_step": cpu / (calls * NEW),
        "wall_ms_per_step": 1000 * dt / (calls * NEW),
        "gpu_util_mean": statistics.fmean(us.vals) if us.vals else None,
    }


def profile_table(fn: Callable[[], int], rows: int = 25) -> str:
    import torch
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


class _Clock:
    """A per-step streamer like the one the harness used to pass to generate()."""

    def __init__(self) -> None:
        self.t: list[float] = []

    def put(self, v: Any) -> None:
        self.t.append(time.perf_counter())

    def end(self) -> None:
        pass


def bare_variants(model: Any, ids: Any, g: Any) -> dict[str, Callable[[], int]]:
    """generate() with one harness ingredient at a time added to the bare call."""
    import torch

    bsz, ones = ids.shape[0], torch.ones_like(ids)
    base_kw = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=0)

    def gen(**kw: Any) -> Callable[[], int]:
        def f() -> int:
            with torch.inference_mode():
                o = model.generate(**kw)
            return (o.shape[1] - kw["input_ids"].shape[1]) * o.shape[0]
        return f

    # left-padded variable-length batch of the same width
    lens = torch.randint(40, 129, (bsz,), generator=g)
    lens[0] = 128
    pad_mask, pad_ids = torch.zeros_like(ids), torch.zeros_like(ids)
    for r, n in enumerate(lens.tolist()):
        pad_mask[r, 128 - n:] = 1
        pad_ids[r, 128 - n:] = ids[r, :n]
    return {
        "bare_no_mask": gen(input_ids=ids, **base_kw),
        "bare_no_min_new": gen(input_ids=ids, max_new_tokens=NEW, do_sample=False,
                               pad_token_id=0),
        "bare_ones_mask": gen(input_ids=ids, attention_mask=ones, **base_kw),
        "bare_padded_mask": gen(input_ids=pad_ids, attention_mask=pad_mask, **base_kw),
        "bare_streamer": gen(input_ids=ids, attention_mask=ones, streamer=_Clock(), **base_kw),
        "bare_greedy_nones": gen(input_ids=ids, attention_mask=ones, num_beams=1,
                                 temperature=None, top_p=None, top_k=None,
                                 repetition_penalty=1.0, **base_kw),
    }


def harness_variants(model: Any, ids: Any, src: Any, report: dict[str, Any]
                     ) -> dict[str, Callable[[], int]]:
    """The harness's backend on its default workload (builtin:prompts, padded), unpadded,
    and with the sampler and the energy window around it."""
    import torch

    from llem_harness.backends import builtin_models
    from llem_harness.backends.base import Batch
    from llem_harness.backends.pytorch import PyTorchBackend
    from llem_harness.energy.base import EnergyWindow
    from llem_harness.sampler import PowerSampler
    from llem_harness.workload import load_prompts
    from llem_schema.config import ExperimentConfig

    bsz = ids.shape[0]
    cfg = ExperimentConfig.model_validate({
        "model": "builtin:llama-1.1b", "decoding": {"max_new_tokens": NEW},
        "workload": {"num_prompts": bsz, "batch_size": bsz, "max_input_tokens": 128},
        "runtime": {"runtime": "local"},
    })
    be = PyTorchBackend(cfg, "cuda", [0])
    be.model, be._torch, be.dtype, be.torch_device = model, torch, torch.bfloat16, "cuda:0"
    be.tokenizer, be._hf_tokenizer = builtin_models.ByteTokenizer(), False
    be._gen_kwargs, be._lean = be._generation_kwargs(), False
    hb = be.make_batches(load_prompts(cfg.workload))
    report.setdefault("harness_prompt_lens", {})[bsz] = [
        r.input_tokens for b in hb for r in b.requests]
    syn = [Batch(requests=hb[0].requests,
                 payload={"input_ids": ids, "attention_mask": torch.ones_like(ids)})]

    def instrumented() -> int:
        with PowerSampler([0], 0.1), EnergyWindow(src, [0]):
            n = sum(be.generate(b).output_tokens for b in hb)
            torch.cuda.synchronize()
        return n

    return {
        "harness_generate_default_prompts": lambda: sum(be.generate(b).output_tokens
                                                        for b in hb),
        "harness_generate_unpadded": lambda: sum(be.generate(b).output_tokens for b in syn),
        "harness_default_sampler_energy": instrumented,
    }


def run_batch(model: Any, bsz: int, g: Any, args: argparse.Namespace,
              report: dict[str, Any], out: Path) -> None:
    import torch

    from llem_harness.energy.select import select_source

    ids = torch.randint(3, 32000, (bsz, 128), generator=g).to("cuda:0")
    src, why = select_source("auto", "cuda", [0])
    variants = bare_variants(model, ids, g) | harness_variants(model, ids, src, report)
    for name, fn in variants.items():
        try:
            row = {"batch": bsz, "variant": name, **timed(fn, args.seconds)}
        except Exception as exc:  # keep going: one failing variant says something too
            row = {"batch": bsz, "variant": name, "error": f"{type(exc).__name__}: {exc}"}
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
        (out / "profile_decode.json").write_text(json.dumps(report, indent=2, default=str))
    report["energy_source"] = getattr(src, "name", None) or why
    for name in ("bare_no_mask", "bare_padded_mask", "harness_generate_default_prompts")[
            : 3 if args.profile else 0]:
        try:
            report["profiles"][f"b{bsz}-{name}"] = profile_table(variants[name])
        except Exception as exc:
            report["profiles"][f"b{bsz}-{name}"] = f"error {exc}"
    if src is not None:
        src.close()


def main() -> int:
    import torch
    import transformers

    from llem_harness.backends import builtin_models

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--profile", action="store_true", help="torch.profiler tables (slow)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"torch": torch.__version__, "rows": [], "profiles": {},
                              "transformers": transformers.__version__}
    model = builtin_models.build_model("builtin:llama-1.1b", torch.bfloat16, "sdpa", "cuda:0",
                                       seed=0)
    g = torch.Generator().manual_seed(0)
    for bsz in [int(x) for x in args.batches.split(",")]:
        run_batch(model, bsz, g, args, report, out)
    (out / "profile_decode.json").write_text(json.dumps(report, indent=2, default=str))
    with (out / "profile_tables.txt").open("w") as f:
        for k, v in report["profiles"].items():
            f.write(f"==== {k}\n{v}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
