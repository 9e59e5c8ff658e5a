"""Environment comparison for ``llem rerun``: flattening, differences, what the host can know."""

from __future__ import annotations

import pytest

from llem.study import envdiff, hostenv
from llem_schema.config import ExperimentConfig
from llem_schema.result import EnvironmentInfo
from tests.factories import ENVIRONMENT

H100 = EnvironmentInfo.model_validate(ENVIRONMENT)


@pytest.fixture(autouse=True)
def _same_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test host is not the factory's node01: only the GPU side varies below."""
    monkeypatch.setattr(hostenv, "machine", lambda: {
        f"host.{k}": v for k, v in ENVIRONMENT["host"].items()
        if k not in ("hostname", "python")})


def _host(**gpu: object) -> dict[str, object]:
    """What hostenv.gpus returns on a host with one GPU (the factory's, unless overridden)."""
    g = ENVIRONMENT["gpus"][0] | gpu
    out = {"device": "cuda", "driver_version": "550.54.15", "cuda_driver_version": "12.4"}
    return out | {f"gpus[0].{k}": g.get(k) for k in hostenv.GPU_FIELDS}


def test_flatten_names_every_field_by_its_result_path() -> None:
    flat = envdiff.flatten_env(H100)
    assert flat["gpus[0].name"] == "NVIDIA H100 80GB HBM3"
    assert flat["gpus[0].power_limit_w"] == 700.0
    assert flat["packages.torch"] == "2.4.0" and flat["host.cpu_count"] == 64
    assert flat["image_digest"] == ENVIRONMENT["image_digest"]


def test_compare_reports_changed_added_and_missing_keys() -> None:
    a = {"x": 1, "gone": "v", "same": 2}
    b = {"x": 3, "new": "w", "same": 2}
    c = envdiff.compare(a, b)
    assert [(d.key, d.original, d.now) for d in c.differences] == \
        [("gone", "v", None), ("new", None, "w"), ("x", 1, 3)]
    assert c.differences[0].line() == "gone: v -> (none)"
    assert not c.same and envdiff.compare(a, dict(a)).same


def test_before_run_on_another_gpu_names_gpu_power_driver_and_cuda(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_gpus(selection: list[int | str]) -> dict[str, object]:
        seen["selection"] = selection
        return _host(name="NVIDIA H200", power_limit_w=600.0) | {
            "driver_version": "580.1", "cuda_driver_version": "13.0"}

    monkeypatch.setattr(hostenv, "gpus", fake_gpus)
    c = envdiff.before_run(H100, ExperimentConfig(), "docker", ENVIRONMENT["image_digest"])
    diffs = {d.key: (d.original, d.now) for d in c.differences}
    assert diffs["gpus[0].name"] == ("NVIDIA H100 80GB HBM3", "NVIDIA H200")
    assert diffs["gpus[0].power_limit_w"] == (700.0, 600.0)
    assert diffs["driver_version"] == ("550.54.15", "580.1")
    assert diffs["cuda_driver_version"] == ("12.4", "13.0")
    assert "image_digest" not in diffs and "runtime" not in diffs
    # in an image: its packages and Python are the image's, not comparable from the host
    assert not any(k.startswith(("packages.", "host.python", "cuda_runtime"))
                   for k in c.compared)
    assert any("fixed by its digest" in u for u in c.unknown)
    # the GPU list is ordered first: what most often explains a difference
    assert c.differences[0].key.startswith(("device", "gpus["))
    assert seen["selection"] == [0]


def test_before_run_locally_compares_packages_and_uses_the_configs_gpus(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr(hostenv, "gpus", lambda sel: seen.update(sel=sel) or _host())
    monkeypatch.setattr(hostenv, "python_side", lambda names: {
        "host.python": "3.11.2", "cuda_runtime_version": "12.4",
        **{f"packages.{n}": {"torch": "2.5.1"}.get(n, "4.45.0") for n in names}})
    cfg = ExperimentConfig.model_validate({"runtime": {"gpus": ["GPU-0000"]}})
    c = envdiff.before_run(H100, cfg, "local", None)
    diffs = {d.key: (d.original, d.now) for d in c.differences}
    assert diffs == {"packages.torch": ("2.4.0", "2.5.1"), "runtime": ("docker", "local"),
                     "image_digest": (ENVIRONMENT["image_digest"], None)}
    assert seen["sel"] == ["GPU-0000"]
    assert "host.hostname" not in c.compared  # the original's was a container's


def test_a_gpu_missing_here_shows_every_field_as_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostenv, "gpus", lambda sel: {"device": "cpu"})
    c = envdiff.before_run(H100, ExperimentConfig(), "local", None)
    keys = {d.key for d in c.differences}
    assert {"device", "gpus[0].name", "gpus[0].power_limit_w"} <= keys


def test_seeds_are_the_chosen_backends_and_the_workloads() -> None:
    cfg = ExperimentConfig.model_validate({"backend": "vllm", "decoding": {"seed": 3},
                                           "vllm": {"seed": 9}})
    assert envdiff.seeds(cfg) == {"vllm.seed": 9, "decoding.seed": 3, "workload.seed": 0,
                                  "workload.traffic.seed": 0}
    assert "vllm.seed" not in envdiff.seeds(ExperimentConfig())
