"""Device mapping, sampler, baseline cache, FLOPs chain and the lean decode loop on CPU."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from llem_harness import baseline_cache, flops
from llem_harness.nvml_devices import nvml_handles, parse_visible_devices
from llem_harness.sampler import PowerSampler
from tests.unit.llem_harness import fake_pynvml

GPUS = [
    {"uuid": "GPU-aaaa", "energy_mj": 0, "power_mw": 100_000, "mig_uuids": ["MIG-a1"]},
    {"uuid": "GPU-bbbb", "energy_mj": 0, "power_mw": 250_000, "avg_power_mw": 200_000},
]


@pytest.fixture
def fake(monkeypatch):
    m = fake_pynvml.make([dict(g) for g in GPUS])
    monkeypatch.setitem(sys.modules, "pynvml", m)
    return m


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("1,0", [("index", "1"), ("index", "0")]),
        ("GPU-bbbb,MIG-a1", [("uuid", "GPU-bbbb"), ("mig", "MIG-a1")]),
        ("0,bogus,1", [("index", "0")]),  # CUDA stops at the first invalid entry
    ],
)
def test_parse_visible_devices(value, expected):
    got = parse_visible_devices(value)
    assert (None if got is None else [(d.kind, d.value) for d in got]) == expected


def test_cuda_index_maps_through_visible_devices(fake, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    assert [h.i for h in nvml_handles([0, 1])] == [1, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb")
    assert [h.i for h in nvml_handles([0])] == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-a1")
    assert [h.i for h in nvml_handles([])] == [0]
    with pytest.raises(IndexError):
        nvml_handles([1])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert [h.i for h in nvml_handles([1])] == [1]


REPO = Path(__file__).resolve().parents[3]


def fake_nvml_for_children(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gpus: list[dict]
                           ) -> None:
    """A ``pynvml`` module file the sampler's own process imports first: the same fake,
    built from ``gpus`` (no NVML here; the child imports it under the real name)."""
    (tmp_path / "pynvml.py").write_text(
        "import json, os, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.unit.llem_harness import fake_pynvml\n"
        "sys.modules[__name__] = fake_pynvml.make(json.loads(os.environ['FAKE_NVML_GPUS']))\n")
    monkeypatch.setenv("FAKE_NVML_GPUS", json.dumps(gpus))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("runner", ["process", "thread"])
def test_sampler_prefers_instant_power_and_labels_phases(fake, monkeypatch, tmp_path, runner):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_nvml_for_children(monkeypatch, tmp_path, GPUS)
    s = PowerSampler([0, 1], interval_s=0.01, runner=runner)
    assert s.active and s.power_method == "instant"
    with s:
        assert s.fallback_reason is None and s.runner == runner
        if runner == "process":
            assert s._proc is not None and s._thread is None  # no sampling thread here
            assert [t.name for t in __import__("threading").enumerate()
                    if t.name == "llem-sampler"] == []
        s.set_phase("baseline")
        time.sleep(0.06)
        s.set_phase("decode")
        time.sleep(0.06)
    assert s._proc is None
    phases = s.by_phase()
    assert {"baseline", "decode"} <= set(phases)
    n, mean, peak = phases["decode"]
    assert n > 0 and mean == pytest.approx(350.0) and peak == pytest.approx(350.0)
    # the average power is a slow field: read with the first sample, then once a second
    assert {x.power_avg_w for x in s.samples if x.gpu == 1} - {None} == {200.0}
    ts = sorted({x.t for x in s.samples})
    # constant 350 W over any interval integrates to 350 W * its length
    assert s.integrate(ts[0], ts[-1]) == pytest.approx(350.0 * (ts[-1] - ts[0]))
    s.write_parquet(tmp_path / "ts.parquet", ts[0])
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "ts.parquet")
    assert {"t_s", "gpu", "phase", "power_w", "power_avg_w"} <= set(t.column_names)
    assert min(t.column("t_s").to_pylist()) >= 0


def test_slow_fields_are_read_every_nth_sample_power_util_reasons_every_sample(fake):
    from llem_harness.nvml_reader import NvmlReader

    r = NvmlReader.open([0], full_every=3)
    rows = [r.read(float(i), "decode")[0] for i in range(7)]
    full = [i for i, x in enumerate(rows) if x.temp_c is not None]
    assert full == [0, 3, 6]
    for i, x in enumerate(rows):
        assert x.power_w == rows[0].power_w > 0 and x.util_pct is not None
        assert x.throttle is not None  # the throttle check sees every sample
        slow = (x.power_avg_w, x.mem_used_bytes, x.sm_clock_mhz, x.mem_clock_mhz)
        if i in full:
            assert x.power_avg_w is not None and x.mem_used_bytes is not None
        else:
            assert slow == (None,) * 4


def test_a_sampler_reads_the_slow_fields_about_once_a_second():
    from llem_harness.sampler import full_every

    assert full_every(0.1) == 10 and full_every(0.25) == 4
    assert full_every(2.0) == 1  # slower than once a second: every sample is full
    assert full_every(0.1, full_read_s=0) == 1


@pytest.mark.parametrize("runner", ["process", "thread"])
def test_both_runners_read_the_slow_fields_on_the_same_cadence(fake, monkeypatch, tmp_path,
                                                               runner):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_nvml_for_children(monkeypatch, tmp_path, GPUS[:1])
    with PowerSampler([0], interval_s=0.01, jitter=0.0, runner=runner,
                      full_read_s=0.04) as s:
        time.sleep(0.2)
    assert s.full_every == 4 and len(s.samples) >= 8
    full = [i for i, x in enumerate(s.samples) if x.temp_c is not None]
    assert full[:2] == [0, 4]
    assert all(x.util_pct is not None for x in s.samples)


def test_samples_of_the_process_take_the_phase_in_force_at_their_time(fake, monkeypatch,
                                                                     tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_nvml_for_children(monkeypatch, tmp_path, GPUS[:1])
    with PowerSampler([0], interval_s=0.01) as s:
        time.sleep(0.05)
        s.set_phase("decode")
        t_decode = time.monotonic()
        time.sleep(0.05)
        s.set_phase("idle")
        t_idle = time.monotonic()
        time.sleep(0.03)
    assert s.samples and [x.t for x in s.samples] == sorted(x.t for x in s.samples)
    for x in s.samples:
        want = "decode" if t_decode <= x.t < t_idle else "idle"
        # a sample read within the few microseconds around a mark may take either side
        if min(abs(x.t - t_decode), abs(x.t - t_idle)) > 1e-3:
            assert x.phase == want, (x.t, x.phase, want)
    assert {x.phase for x in s.samples} == {"idle", "decode"}


def test_a_sampler_process_that_cannot_open_nvml_falls_back_to_a_thread(fake, monkeypatch,
                                                                        tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (tmp_path / "pynvml.py").write_text("raise ImportError('no NVML in this process')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with PowerSampler([0], interval_s=0.01) as s:
        time.sleep(0.05)
    assert s.runner == "thread" and "no NVML in this process" in (s.fallback_reason or "")
    assert s.samples and s._proc is None


def test_sampler_without_nvml_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    s = PowerSampler([0])
    assert not s.active and "NVML" in s.unavailable_reason


def test_baseline_cache_roundtrip_and_expiry(tmp_path, monkeypatch):
    keys = [baseline_cache.GpuKey("GPU-x/1", 700.0)]
    assert baseline_cache.load(keys, root=tmp_path) is None
    path = baseline_cache.store(keys, 120.5, 10.0, root=tmp_path, now=1000.0)
    assert path.name == "GPU-x_1_700W.json"
    assert baseline_cache.load(keys, root=tmp_path, now=1010.0) == 120.5
    monkeypatch.setenv(baseline_cache.ENV_MAX_AGE, "5")
    assert baseline_cache.load(keys, root=tmp_path, now=1010.0) is None  # too old
    other_limit = [baseline_cache.GpuKey("GPU-x/1", 400.0)]
    assert baseline_cache.load(other_limit, root=tmp_path, now=1001.0) is None
    monkeypatch.delenv(baseline_cache.ENV_DIR, raising=False)
    assert baseline_cache.load(keys) is None  # no cache dir configured: always measure


def test_baseline_keys_from_nvml(fake, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert baseline_cache.gpu_keys([1]) == [baseline_cache.GpuKey("GPU-bbbb", 700.0)]


def test_flops_chain_falls_through_and_records_why():
    arch = {"num_parameters": 1000, "hidden_size": 8, "num_hidden_layers": 2,
            "embedding_parameters": 100}

    def profiler():
        raise RuntimeError("no profiler")

    def calflops():
        return None

    est, why = flops.best_estimate([profiler, calflops], arch, [4, 4], [3, 3])
    assert est.method == "architecture" and len(why) == 2 and "no profiler" in why[0]
    est, _ = flops.best_estimate([], {"num_parameters": 10}, [4], [3])
    assert est.method == "params" and est.prefill == 2 * 10 * 4 and est.decode == 2 * 10 * 2


def test_flops_probe_extrapolates_per_token():
    probe = flops.Probe(prefill_flops=800.0, prefill_tokens=8, decode_step_flops=40.0, rows=2,
                        method="flop_counter")
    est = flops.extrapolate(probe, total_input_tokens=80, total_output_tokens=30,
                            num_requests=10)
    assert est.prefill == pytest.approx(8000.0)  # 100 FLOPs per input token
    assert est.decode == pytest.approx(20.0 * 20)  # 20 per row-step, 30 - 10 decode tokens
    assert est.method == "flop_counter"


def test_flop_counter_counts_a_matmul_and_attention_without_the_profiler():
    """FLOPs come from a dispatch mode, not torch.profiler: the profiler's first use left
    every later eager generate of the process 15-30% slower on the H100 (session 5)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    a, b = torch.randn(16, 32), torch.randn(32, 8)
    assert flops.profile_callable(lambda: a @ b) == pytest.approx(2 * 16 * 32 * 8)
    q = torch.randn(1, 8, 8, 16)  # batch, heads, sequence, head dim
    k = v = torch.randn(1, 2, 8, 16)  # grouped-query attention: 2 key/value heads for 8
    want = 2 * (2 * 8 * 8 * 8 * 16)  # QK^T and AV over the query heads, 2 FLOPs per MAC
    attn = flops.profile_callable(
        lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
    assert attn == pytest.approx(want)
    assert flops.sdpa_flops((1, 8, 8, 16), (1, 2, 8, 16), (1, 2, 8, 16)) == want
    assert not torch.autograd.profiler._is_profiler_enabled


def test_lean_loop_matches_generate_greedy():
    pytest.importorskip("transformers")
    from llem_harness.backends.pytorch import PyTorchBackend
    from llem_harness.workload import load_prompts
    from llem_schema.config import ExperimentConfig

    def tokens(loop):
        cfg = ExperimentConfig.model_validate({
            "model": "builtin:tiny-llama",
            "pytorch": {"cache_implementation": "static", "decode_loop": loop},
            "workload": {"num_prompts": 6, "batch_size": 3, "max_input_tokens": 24},
            "decoding": {"max_new_tokens": 6},
        })
        b = PyTorchBackend(cfg, "cpu", [])
        b.load()
        outs = []
        for bt in b.make_batches(load_prompts(cfg.workload)):
            o = b.generate(bt)
            assert o.output_tokens == 18 and len(o.itl_s) == 5 and o.ttft_s[0] > 0
            outs.append(b._last_tokens.clone())
        return outs

    import torch

    ref, lean = tokens("generate"), tokens("lean")
    assert all(torch.equal(x, y) for x, y in zip(ref, lean, strict=True))


def test_lean_loop_rejects_sampling():
    pytest.importorskip("transformers")
    from llem_harness.backends.pytorch import PyTorchBackend
    from llem_schema.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate({
        "model": "builtin:tiny-llama",
        "pytorch": {"cache_implementation": "static", "decode_loop": "lean"},
        "decoding": {"strategy": "sampling"},
    })
    with pytest.raises(ValueError, match="decode_loop=lean"):
        PyTorchBackend(cfg, "cpu", []).load()
