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
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def side(runner: str | None, model: Any, ids: Any, new_tokens: int) -> float:
    """One generate call under the named sampler (None: none); its seconds."""
    from llem_harness.sampler import PowerSampler

    if runner is None:
        return timed_generate(model, ids, new_tokens)
    with PowerSampler([0], 0.1, runner=runner) as s:
        assert s.runner == runner, s.fallback_reason
        return timed_generate(model, ids, new_tokens)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fake-nvml", action="store_true", help="no GPU: the stand-in pynvml")
    ap.add_argument("--read-us", type=int, default=20, help="with --fake-nvml: C time a read")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    if args.fake_nvml:
        install_fake(args.read_us)
    model, ids = build(not args.fake_nvml, args.batch)
    sides: dict[str, str | None] = {"none": None, "thread": "thread", "process": "process"}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for k in sides:  # warm-up
        side(sides[k], model, ids, args.new_tokens)
    for r in range(args.rounds):
        for k in (list(sides) if r % 2 == 0 else list(reversed(sides))):
            times[k].append(side(sides[k], model, ids, args.new_tokens))
    out: dict[str, Any] = {"batch": args.batch, "rounds": args.rounds,
                           "fake_nvml": args.fake_nvml, "read_us": args.read_us,
                           "cpus": sorted(os.sched_getaffinity(0))}
    for k in ("thread", "process"):
        slow = [a / b for a, b in zip(times[k], times["none"], strict=True)]
        out[f"{k}_over_none_time"] = statistics.median(slow)
        out[f"{k}_over_none_ci95"] = median_ci95(slow)
    out["median_call_s"] = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
