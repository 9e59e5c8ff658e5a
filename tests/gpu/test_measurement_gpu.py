"""Measurement core on a real GPU (skipped without one); numbers: benchmarks/gpu_validation.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pynvml")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_nvml_window_is_positive_and_matches_power_trace():
    import time

    from llem_harness.energy.base import EnergyWindow
    from llem_harness.energy.nvml import NVMLEnergySource
    from llem_harness.sampler import PowerSampler

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    src = NVMLEnergySource([0])
    with PowerSampler([0], 0.1) as s, EnergyWindow(src, [0]) as w:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 3:
            a @ a
        torch.cuda.synchronize()
    r = w.reading
    assert r.joules > 0 and r.duration_s >= 3
    trace = s.integrate(r.start_monotonic, r.end_monotonic)
    assert trace is not None and abs(trace - r.joules) / r.joules < 0.05


def test_environment_on_gpu():
    from llem_harness import environment

    env = environment.collect("cuda", [0], {}, "local")
    g = env.gpus[0]
    assert g.name and g.uuid and g.power_limit_w and env.driver_version
