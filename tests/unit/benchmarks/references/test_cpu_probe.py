"""references/cpu_probe.pinned_launcher: the launching thread alone goes to the launch
core for the block and comes back; other threads keep the process's cores."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[4] / "benchmarks"
sys.path.insert(0, str(BENCH / "references"))
sys.path.insert(0, str(BENCH))
import cpu_probe  # noqa: E402
import gpu_validation  # noqa: E402


def test_the_name_gpu_validation_sets_is_the_one_the_workers_read() -> None:
    assert gpu_validation.LAUNCH_CORE_ENV == cpu_probe.LAUNCH_CORE_ENV


def test_unset_leaves_the_affinity_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cpu_probe.LAUNCH_CORE_ENV, raising=False)
    before = os.sched_getaffinity(0)
    with cpu_probe.pinned_launcher() as core:
        assert core is None
        assert os.sched_getaffinity(0) == before


def test_only_the_calling_thread_moves_and_it_comes_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = os.sched_getaffinity(0)
    core = max(before)
    monkeypatch.setenv(cpu_probe.LAUNCH_CORE_ENV, str(core))
    seen: dict[str, set[int]] = {}
    go, done = threading.Event(), threading.Event()

    def other() -> None:  # started before the block, as llem's sampler is
        go.wait(10)
        seen["other"] = os.sched_getaffinity(0)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    try:
        with cpu_probe.pinned_launcher() as got:
            assert got == core
            assert os.sched_getaffinity(0) == {core}
            go.set()
            assert done.wait(10)
    finally:
        go.set()
        t.join(10)
    assert seen["other"] == before
    assert os.sched_getaffinity(0) == before


def test_a_core_outside_the_workers_cores_is_refused_by_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    outside = max(os.sched_getaffinity(0)) + 1
    monkeypatch.setenv(cpu_probe.LAUNCH_CORE_ENV, str(outside))
    with (pytest.raises(ValueError, match=f"BENCH_LAUNCH_CORE={outside} is not among"),
          cpu_probe.pinned_launcher()):
        pass
