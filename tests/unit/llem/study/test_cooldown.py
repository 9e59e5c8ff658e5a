"""study.cooldown_max_temp_c (issue 17 item 4): between runs, wait until the slot's GPUs are
at or below a temperature, reading NVML every 2 s (a fake pynvml and a fake clock here)."""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import pytest
from rich.console import Console

from llem.study import lock


def _fake_nvml(temps: dict[int, list[int]]) -> types.ModuleType:
    """Each GPU index reads its temperatures in turn, the last one repeated."""
    m = types.ModuleType("pynvml")
    m.NVML_TEMPERATURE_GPU = 0
    m.reads = []
    m.nvmlInit = lambda: None
    m.nvmlDeviceGetHandleByIndex = lambda i: i

    def temperature(h: int, sensor: int) -> int:
        m.reads.append(h)
        seq = temps[h]
        return seq.pop(0) if len(seq) > 1 else seq[0]

    m.nvmlDeviceGetTemperature = temperature
    return m


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """time.sleep advances time.monotonic instead of sleeping; returns the sleeps."""
    now, sleeps = [0.0], []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    monkeypatch.setattr(lock.time, "sleep", sleep)
    monkeypatch.setattr(lock.time, "monotonic", lambda: now[0])
    return sleeps


def test_waits_until_every_gpu_of_the_slot_is_below_the_temperature(
        monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> None:
    nv = _fake_nvml({0: [80, 70, 60], 1: [75, 66, 64]})
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    lock.cooldown(5.0, 65.0, [0, 1])
    # 5 s cooldown, then reads at 80/75 and 70/66 (too warm), 60/64 (both <= 65)
    assert clock == [5.0, 2, 2] and nv.reads == [0, 1] * 3


def test_already_cool_or_no_temperature_asked_does_not_wait(
        monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> None:
    nv = _fake_nvml({0: [40]})
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    lock.cooldown(0.0, 65.0, [0])
    assert clock == [] and nv.reads == [0]
    lock.cooldown(0.0, None, [0])
    assert nv.reads == [0]  # no NVML read without a temperature


def test_gives_up_after_ten_minutes(monkeypatch: pytest.MonkeyPatch,
                                    clock: list[float]) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml({0: [90]}))
    lock.cooldown(0.0, 65.0, [0])
    assert sum(clock) == pytest.approx(600, abs=2)


# ------------------------------------- GPUs named by UUID, and a cooldown that gives up


def _uuid_nvml(temps: dict[int, list[int]], uuids: dict[str, int]) -> types.ModuleType:
    """:func:`_fake_nvml` whose GPUs also answer to UUIDs; a MIG UUID is a handle of its
    own (no temperature sensor) whose parent is the GPU."""
    m = _fake_nvml(temps)
    m.shutdowns = 0

    def by_uuid(u: str) -> object:
        if u not in uuids:
            raise RuntimeError("Not Found")
        return ("mig", uuids[u]) if u.startswith("MIG-") else uuids[u]

    def temperature(h: object, sensor: int) -> int:
        if isinstance(h, tuple):
            raise RuntimeError("Not Supported")  # a MIG instance has no sensor
        m.reads.append(h)
        seq = temps[h]  # type: ignore[index]
        return seq.pop(0) if len(seq) > 1 else seq[0]

    def shutdown() -> None:
        m.shutdowns += 1

    m.nvmlDeviceGetHandleByUUID = by_uuid
    m.nvmlDeviceGetDeviceHandleFromMigDeviceHandle = lambda h: h[1]
    m.nvmlDeviceGetTemperature = temperature
    m.nvmlShutdown = shutdown
    return m


def test_a_slot_named_by_uuid_reads_that_gpu_not_gpu_0(
        monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> None:
    nv = _uuid_nvml({0: [30], 3: [80, 70, 60]}, {"GPU-aaaa": 3, "MIG-bbbb": 3})
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    assert lock.cooldown(0.0, 65.0, ["GPU-aaaa"]) is None
    assert nv.reads == [3, 3, 3] and clock == [2, 2]  # GPU 0 (30 C) was never read
    nv.reads.clear()
    assert lock.cooldown(0.0, 65.0, ["MIG-bbbb"]) is None  # the MIG instance's parent GPU
    assert nv.reads == [3] and nv.shutdowns == 2


def test_giving_up_at_the_cap_is_said_not_silent(monkeypatch: pytest.MonkeyPatch,
                                                 clock: list[float]) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _uuid_nvml({0: [40], 1: [90]}, {}))
    note = lock.cooldown(0.0, 65.0, [0, 1])
    assert note == ("cooldown gave up: GPU 1 90 C still above 65 C after 600 s (the cap); "
                    "ran anyway")
    assert sum(clock) == pytest.approx(600, abs=2)


@pytest.mark.parametrize(("broken", "said"), [
    ("init", "NVML unavailable (Driver Not Loaded)"),
    ("uuid", "cannot read GPU GPU-zzzz's temperature (NVML: Not Found)"),
    ("read", "cannot read GPU 0's temperature (NVML: Unknown Error)"),
])
def test_an_nvml_error_is_said_not_silent(broken: str, said: str,
                                          monkeypatch: pytest.MonkeyPatch,
                                          clock: list[float]) -> None:
    nv = _uuid_nvml({0: [90]}, {})

    def fail(*_: object) -> None:
        raise RuntimeError("Driver Not Loaded" if broken == "init" else "Unknown Error")

    if broken == "init":
        nv.nvmlInit = fail
    elif broken == "read":
        nv.nvmlDeviceGetTemperature = fail
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    note = lock.cooldown(0.0, 65.0, ["GPU-zzzz"] if broken == "uuid" else [0])
    assert note is not None and note.startswith("cooldown gave up: ") and said in note
    assert note.endswith("ran without waiting for <= 65 C") and clock == []


def test_without_pynvml_the_cooldown_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    assert "no NVML (pynvml not installed)" in (lock.cooldown(0.0, 65.0, [0]) or "")
    assert lock.cooldown(0.0, None, [0]) is None  # no temperature asked: nothing to say


def test_a_cooldown_that_gave_up_is_in_the_next_runs_state_and_log_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llem.config.loader import LoadedConfig
    from llem.runtimes.local import LocalRuntime
    from llem.study import manifest as mf
    from llem.study.runner import run_study
    from llem_schema.study import StudyConfig

    fake = str(Path(__file__).resolve().parents[3] / "fixtures" / "fake_harness.py")
    nv = _uuid_nvml({0: [90]}, {})
    nv.nvmlInit = lambda: (_ for _ in ()).throw(RuntimeError("Driver Not Loaded"))
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.setenv("LLEM_FAKE_COUNTER", str(tmp_path / "executions.log"))
    cfg = StudyConfig.model_validate({
        "name": "t", "base": {"model": "builtin:tiny-llama", "runtime": {"runtime": "local"}},
        "sweep": {"workload.batch_size": [1, 2]},
        "study": {"cycles": 1, "cooldown_max_temp_c": 65.0}})
    out = io.StringIO()
    code = run_study(LoadedConfig(study=cfg, is_study=True, source="study.yaml"),
                     tmp_path / "r", quiet=True,
                     console=Console(file=out, width=400, color_system=None),
                     runtime_factory=lambda: LocalRuntime(python=fake), batch_python=fake)
    assert code == 0, out.getvalue()
    (d,) = (tmp_path / "r").iterdir()
    runs = sorted(mf.load_manifest(d).runs, key=lambda r: r.position)
    assert [r.state for r in runs] == ["done", "done"]
    assert runs[0].message is None  # the first run of a slot has no cooldown before it
    assert runs[1].message == ("cooldown gave up: NVML unavailable (Driver Not Loaded); ran "
                               "without waiting for <= 65 C")
    line = next(ln for ln in out.getvalue().splitlines() if ln.startswith("[2/2]"))
    assert line.endswith(runs[1].message)
