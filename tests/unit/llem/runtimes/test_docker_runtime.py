"""DockerRuntime's container spec, without a daemon (the integration suite runs it for real)."""

from __future__ import annotations

from pathlib import Path

from llem.images.registry import EnsuredImage
from llem.runtimes.base import RunRequest
from llem.runtimes.containers import CONTAINER_TOKEN_PATH
from llem.runtimes.docker import NVIDIA_HINT, DockerRuntime, start_error_hint

IMG = EnsuredImage(ref="r:5000/llenergymeasure/pytorch:0.1.0-cuda12", run_ref="sha256:" + "1" * 64,
                   digest="sha256:" + "d" * 64, image_id="sha256:" + "1" * 64)


def _rt(**kw) -> DockerRuntime:
    return DockerRuntime(IMG, client=object(), **kw)  # container_kwargs never calls the client


def test_cpu_host_requests_no_devices_and_mounts_run_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    model = tmp_path / "model"
    model.mkdir()
    kw = _rt(user="1234:1234", hf_cache=None).container_kwargs(
        RunRequest(run_dir=tmp_path / "run", backend="pytorch", read_only_paths=[model]))
    assert kw["device_requests"] is None
    assert kw["user"] == "1234:1234"
    assert kw["command"] == ["/llem/run"] and kw["image"] == IMG.run_ref
    assert kw["volumes"][str((tmp_path / "run").resolve())] == {"bind": "/llem/run", "mode": "rw"}
    assert kw["volumes"][str(model.resolve())] == {"bind": str(model.resolve()), "mode": "ro"}
    env = kw["environment"]
    assert env["LLEM_RUNTIME"] == "docker"
    assert env["LLEM_IMAGE_REF"] == IMG.ref and env["LLEM_IMAGE_DIGEST"] == IMG.digest
    assert kw["shm_size"] == "8g" and "ipc_mode" not in kw


def test_gpus_become_a_device_request(tmp_path):
    kw = _rt(hf_cache=None).container_kwargs(
        RunRequest(run_dir=tmp_path, backend="pytorch", gpus=[1, "GPU-abc"]))
    (req,) = kw["device_requests"]
    assert req["Driver"] == "nvidia" and req["DeviceIDs"] == ["1", "GPU-abc"]
    kw = _rt(hf_cache=None, gpu_host=True).container_kwargs(
        RunRequest(run_dir=tmp_path, backend="pytorch"))
    assert kw["device_requests"][0]["DeviceIDs"] == ["0"]
    assert _rt(hf_cache=None, ipc_host=True).container_kwargs(
        RunRequest(run_dir=tmp_path, backend="pytorch"))["ipc_mode"] == "host"


def test_hf_token_never_in_environment_and_hf_cache_read_only(tmp_path, monkeypatch):
    """The token reaches the container only as a read-only file named by HF_TOKEN_PATH:
    an environment variable would show in `docker inspect` while the container exists."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_secret_value")
    cache = tmp_path / "hub"
    cache.mkdir()
    token = tmp_path / "secret" / "hf_token"
    req = RunRequest(run_dir=tmp_path / "run", backend="pytorch",
                     env={"HF_HOME": "/root/x", "HF_TOKEN": "hf_secret_value"})
    kw = _rt(hf_cache=cache).container_kwargs(req, token)
    env = kw["environment"]
    assert "HF_TOKEN" not in env and "HUGGING_FACE_HUB_TOKEN" not in env
    assert env["HF_TOKEN_PATH"] == CONTAINER_TOKEN_PATH
    assert kw["volumes"][str(token)] == {"bind": CONTAINER_TOKEN_PATH, "mode": "ro"}
    assert "hf_secret_value" not in repr(kw)
    assert "HF_HOME" not in env  # a host path would be wrong inside
    assert env["HF_HUB_CACHE"] == "/llem/hf-cache"
    assert kw["volumes"][str(cache.resolve())]["mode"] == "ro"
    assert kw["network_mode"] == "none" and env["HF_HUB_OFFLINE"] == "1"
    no_token = _rt(hf_cache=None).container_kwargs(req)
    assert "HF_TOKEN_PATH" not in no_token["environment"]
    assert "hf_secret_value" not in repr(no_token)


def test_start_error_hints_are_one_line():
    msg = start_error_hint('could not select device driver "nvidia" with capabilities: [[gpu]]')
    assert msg == NVIDIA_HINT and "nvidia-container-toolkit" in msg and "\n" not in msg
    assert "\n" not in start_error_hint("some\nmultiline\nerror")


def test_available_says_why_without_raising(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nope.sock")
    ok, why = DockerRuntime.available()
    assert not ok and "nope.sock" in why and "--runtime local" in why


def test_sweep_backends_get_their_own_image(tmp_path):
    other = EnsuredImage("v", "sha256:" + "2" * 64, None, "sha256:" + "2" * 64)
    rt = DockerRuntime(IMG, client=object(), resolver=lambda b: other, hf_cache=None)
    rt.images["pytorch"] = IMG
    assert rt.container_kwargs(RunRequest(Path(tmp_path), "vllm"))["image"] == other.run_ref
    assert rt.container_kwargs(RunRequest(Path(tmp_path), "pytorch"))["image"] == IMG.run_ref
