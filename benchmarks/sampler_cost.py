"""What the power sampler costs the decode loop it watches: a CPU-bound ``generate``
alternating with no sampler, the in-process sampler thread and the sampler's own process
(llem's default), paired round by round.

Eager decode at 25-40% GPU utilisation is bound by the thread that launches the kernels,
so anything that takes Python's GIL from it shows up as lost throughput. Each NVML read
releases the GIL and takes it back, so a sampler *thread* forces a hand-off per read
(~9 per sample, 10 samples a second); the sampler *process* shares no interpreter.

On a GPU machine it runs the 1.1B shape on ``cuda:0`` with the real NVML. Without one,
``--fake-nvml`` stands in a ``pynvml`` whose every call sleeps ``--read-us`` in C with the
GIL released (as ctypes does for the real library), and a launch-bound tiny Llama on the
CPU plays the decode loop (per-step time there is Python dispatch, as on the GPU).

    python benchmarks/sampler_cost.py [--fake-nvml] [--batch 8] [--rounds 40]

``--sides`` picks the sides (default ``none,thread,process``). Besides llem's two samplers
(``-full``: every field at every sample, as before session 11, instead of the slow fields
once a second),
a side ``reader:<calls>@<cpus>`` is a bare NVML loop in its own process (no llem code):
``calls`` joined by ``+`` from :data:`CALLS` (``all`` = the eight a llem sample makes), at the
sampler's 10 Hz, pinned to ``cpus`` (``same``: the cores this process runs on). It separates
the two ways a sampler can cost the decode loop: CPU time on the launching thread's cores
(``all@same`` vs ``all@<other cores>``) and the NVML calls themselves (``instant@<other>``:
one call a sample). Each reader reports its calls' median latency during the generate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "entrypoints"), str(HERE / "references"), str(HERE)]

from gpu_validation import median_ci95  # noqa: E402  (the same seeded bootstrap)
from make_model import SHAPES  # noqa: E402  (the 1.1B shape of builtin:llama-1.1b)

#: the CPU stand-in: the 1.1B shape's 22 layers, narrow, so each step is Python dispatch
CPU_SHAPE = dict(SHAPES["tiny"], num_hidden_layers=22)

FAKE = '''"""pynvml stand-in: every call sleeps {us} us in C with the GIL released."""
import ctypes, types
_libc = ctypes.CDLL(None)
NVML_FI_DEV_POWER_INSTANT, NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, NVML_CLOCK_MEM = 186, 0, 1, 2
def _c(v):
    _libc.usleep({us})
    return v
class _H:
    def __init__(self, i): self.i = i
def nvmlInit(): return None
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetHandleByIndex(i): return _H(i)
def nvmlDeviceGetFieldValues(h, f):
    return [_c(types.SimpleNamespace(nvmlReturn=0, value=types.SimpleNamespace(uiVal=300000)))]
def nvmlDeviceGetPowerUsage(h): return _c(300000)
def nvmlDeviceGetUtilizationRates(h): return _c(types.SimpleNamespace(gpu=30))
def nvmlDeviceGetMemoryInfo(h): return _c(types.SimpleNamespace(used=1 << 30))
def nvmlDeviceGetTemperature(h, k): return _c(45)
def nvmlDeviceGetClockInfo(h, k): return _c(1980)
def nvmlDeviceGetCurrentClocksEventReasons(h): return _c(0)
'''


#: the NVML calls a reader side can make (``all``: the eight of one llem sample)
CALLS = ["instant", "power", "util", "memory", "temp", "smclock", "memclock", "reasons"]

READER = r'''
import json, select, sys, time
import pynvml
calls, interval = sys.argv[1].split("+"), float(sys.argv[2])
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
fn = {
    "instant": lambda: pynvml.nvmlDeviceGetFieldValues(h, [pynvml.NVML_FI_DEV_POWER_INSTANT]),
    "power": lambda: pynvml.nvmlDeviceGetPowerUsage(h),
    "util": lambda: pynvml.nvmlDeviceGetUtilizationRates(h),
    "memory": lambda: pynvml.nvmlDeviceGetMemoryInfo(h),
    "temp": lambda: pynvml.nvmlDeviceGetTemperature(h, 0),
    "smclock": lambda: pynvml.nvmlDeviceGetClockInfo(h, 1),
    "memclock": lambda: pynvml.nvmlDeviceGetClockInfo(h, 2),
    "reasons": lambda: pynvml.nvmlDeviceGetCurrentClocksEventReasons(h),
}
took = {c: [] for c in calls}
print("ready", flush=True)
next_t = time.monotonic()
while True:
    for c in calls:
        t = time.perf_counter()
        fn[c]()
        took[c].append(time.perf_counter() - t)
    next_t += interval
    if select.select([sys.stdin], [], [], max(0.0, next_t - time.monotonic()))[0]:
        break
med = {c: sorted(v)[len(v) // 2] * 1e6 for c, v in took.items()}
print(json.dumps({"samples": len(took[calls[0]]), "median_us": med}), flush=True)
'''


def parse_cpus(spec: str) -> set[int]:
    """"4-5,8" -> {4, 5, 8}; "same" -> this process's cores."""
    if spec == "same":
        return set(os.sched_getaffinity(0))
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


class Reader:
    """A bare NVML loop (:data:`READER`) in its own process, pinned, around one call."""

    def __init__(self, spec: str, interval_s: float = 0.1) -> None:
        calls, _, cpus = spec.partition("@")
        self.calls = CALLS if calls == "all" else calls.split("+")
        unknown = set(self.calls) - set(CALLS)
        if unknown:
            raise SystemExit(f"--sides: unknown NVML call(s) {sorted(unknown)}; use {CALLS}")
        self.cpus, self.interval_s = parse_cpus(cpus or "same"), interval_s
        self.report: dict[str, Any] = {}

    def __enter__(self) -> Reader:
        cpus = self.cpus
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER, "+".join(self.calls), str(self.interval_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError("the NVML reader did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self.proc.communicate("stop\n", timeout=60)
        self.report = json.loads(out.strip().splitlines()[-1])


def install_fake(read_us: int) -> None:
    """The stand-in pynvml, for this process and the sampler's (first on PYTHONPATH)."""
    d = Path(tempfile.mkdtemp(prefix="llem-fake-nvml-"))
    (d / "pynvml.py").write_text(FAKE.format(us=read_us))
    sys.path.insert(0, str(d))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(d), os.environ.get("PYTHONPATH", "")])


def build(cuda: bool, batch: int) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = SHAPES["llama-1.1b"] if cuda else CPU_SHAPE
    device = "cuda:0" if cuda else "cpu"
    if not cuda:  # one launching thread, as on the GPU (no intra-op pool on the other core)
        torch.set_num_threads(1)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**shape, pad_token_id=0, attn_implementation="sdpa",
                                             tie_word_embeddings=False))
    model = model.to(torch.bfloat16 if cuda else torch.float32).eval()
    ids = torch.randint(3, shape["vocab_size"], (batch, 128), device=device)
    return model, ids


def timed_generate(model: Any, ids: Any, new_tokens: int) -> float:
    import torch

    t = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                       max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)
    if ids.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t


def side(name: str, model: Any, ids: Any, new_tokens: int,
         latencies: dict[str, list[dict[str, float]]]) -> float:
    """One generate call under the named side; its seconds."""
    from llem_harness.sampler import FULL_READ_S, PowerSampler

    if name == "none":
        return timed_generate(model, ids, new_tokens)
    if name.startswith("reader:"):
        with Reader(name.removeprefix("reader:")) as r:
            took = timed_generate(model, ids, new_tokens)
        latencies.setdefault(name, []).append(r.report["median_us"])
        return took
    runner, _, full = name.partition("-")  # "process-full": every field at every sample
    with PowerSampler([0], 0.1, runner=runner, full_read_s=0.0 if full else FULL_READ_S) as s:
        assert s.runner == runner, s.fallback_reason
        return timed_generate(model, ids, new_tokens)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fake-nvml", action="store_true", help="no GPU: the stand-in pynvml")
    ap.add_argument("--read-us", type=int, default=20, help="with --fake-nvml: C time a read")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--sides", default="none,thread,process",
                    help="comma-separated: none, thread, process, thread-full, process-full "
                    "(every field at every sample), reader:<calls>@<cpus>")
    args = ap.parse_args()
    sides = args.sides.split(",")
    if "none" not in sides:
        sides.insert(0, "none")
    for k in sides:  # a bad side fails before the model is built
        if k.startswith("reader:"):
            Reader(k.removeprefix("reader:"))
    if args.fake_nvml:
        install_fake(args.read_us)
    model, ids = build(not args.fake_nvml, args.batch)
    times: dict[str, list[float]] = {k: [] for k in sides}
    latencies: dict[str, list[dict[str, float]]] = {}
    for k in sides:  # warm-up
        side(k, model, ids, args.new_tokens, {})
    for r in range(args.rounds):
        for k in (sides if r % 2 == 0 else list(reversed(sides))):
            times[k].append(side(k, model, ids, args.new_tokens, latencies))
    out: dict[str, Any] = {"batch": args.batch, "rounds": args.rounds,
                           "fake_nvml": args.fake_nvml, "read_us": args.read_us,
                           "cpus": sorted(os.sched_getaffinity(0))}
    for k in sides[1:]:
        slow = [a / b for a, b in zip(times[k], times["none"], strict=True)]
        out[f"{k}_over_none_time"] = statistics.median(slow)
        out[f"{k}_over_none_ci95"] = median_ci95(slow)
    out["median_call_s"] = {k: statistics.median(v) for k, v in times.items()}
    out["reader_call_median_us"] = {
        k: {c: statistics.median(r[c] for r in rows) for c in rows[0]}
        for k, rows in latencies.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
