"""runtime auto explains itself (issue 14): local only where the backend is importable, a
GPU-only engine refused on a host without an NVIDIA driver before any pull, never a silent
fallback."""

from __future__ import annotations

import pytest

from llem.runtimes import docker as docker_rt
from llem.runtimes.base import RuntimeUnavailable
from llem.runtimes.local import LocalRuntime
from llem.study import execute


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from llem.images import cuda

    monkeypatch.setattr(cuda, "detect_driver_cuda", lambda override=None: None)


@pytest.mark.parametrize("runtime", ["auto", "docker", "podman"])
@pytest.mark.parametrize("backend", ["vllm", "tensorrt"])
def test_gpu_engines_need_a_gpu_before_anything_is_pulled(no_gpu, runtime: str,
                                                           backend: str, monkeypatch) -> None:
    pulled: list[str] = []
    monkeypatch.setattr(docker_rt, "make", lambda **kw: pulled.append("pull"))
    with pytest.raises(RuntimeUnavailable, match=f"the {backend} engine needs an NVIDIA GPU"):
        execute.make_runtime(runtime, backend=backend)
    assert pulled == []


def test_auto_without_a_daemon_uses_local_only_when_importable(monkeypatch, capsys) -> None:
    monkeypatch.setattr(docker_rt.DockerRuntime, "available",
                        classmethod(lambda cls: (False, "no Docker daemon answers")))
    rt = execute.make_runtime("auto", backend="pytorch")
    assert isinstance(rt, LocalRuntime)
    assert "runtime auto -> local: no Docker daemon answers" in capsys.readouterr().err
    monkeypatch.setattr(execute, "importable_here", lambda backend: False)
    with pytest.raises(RuntimeUnavailable, match=r"pytorch backend is not installed here"):
        execute.make_runtime("auto", backend="pytorch")


def test_auto_with_a_daemon_but_no_image_says_why(monkeypatch, capsys) -> None:
    monkeypatch.setattr(docker_rt.DockerRuntime, "available", classmethod(lambda cls: (True, "")))

    def no_image(**kw):
        raise RuntimeUnavailable("llenergymeasure/pytorch:0.1.0-cpu: not found in the registry")

    monkeypatch.setattr(docker_rt, "make", no_image)
    assert isinstance(execute.make_runtime("auto", backend="pytorch"), LocalRuntime)
    assert "not found in the registry" in capsys.readouterr().err
    with pytest.raises(RuntimeUnavailable, match="not found in the registry"):
        execute.make_runtime("docker", backend="pytorch")


@pytest.mark.parametrize("backend", ["vllm", "tensorrt"])
def test_local_gpu_engine_that_is_not_here_needs_a_gpu_too(no_gpu, backend: str,
                                                            monkeypatch) -> None:
    """`llem run --backend tensorrt examples/quickstart.yaml` (runtime: local) on a CPU host:
    the GPU requirement in one line, not a harness that fails on the missing package."""
    monkeypatch.setattr(execute, "importable_here", lambda b: False)
    with pytest.raises(RuntimeUnavailable, match=f"the {backend} engine needs an NVIDIA GPU"):
        execute.make_runtime("local", backend=backend)
    monkeypatch.setattr(execute, "importable_here", lambda b: True)  # e.g. a vLLM CPU build
    assert isinstance(execute.make_runtime("local", backend=backend), LocalRuntime)
