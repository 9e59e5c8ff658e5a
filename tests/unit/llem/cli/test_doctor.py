"""``llem doctor`` tells apart what a user fixes differently (issue 14): a daemon that is not
running, a socket the user may not open, a registry that does not answer while the image is
here anyway (not a failure), and a GPU host without the NVIDIA container toolkit.

The daemon-down cases use a real socket path (none, or one nobody listens on); the others a
stand-in Docker client, and the SDK's own exception chain for a refused socket (as root here,
no socket can refuse us).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llem.cli import doctor as doctor_mod
from llem.images import refs as images_refs
from llem.images import registry as images_registry
from llem.images.base import ImageError


@pytest.fixture(autouse=True)
def _host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user config, no GPU seen by NVML (the driver comes from --cuda where a test wants)."""
    monkeypatch.setattr(images_refs, "user_config_path", lambda: tmp_path / "none.yaml")
    monkeypatch.setattr(doctor_mod, "_gpu_check",
                        lambda: (doctor_mod.Check("GPUs", None, "none visible"), 0))


def _check(checks: list[doctor_mod.Check], name: str) -> doctor_mod.Check:
    return next(c for c in checks if c.name == name)


def test_daemon_not_running_no_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    c = _check(doctor_mod.run_checks(cuda="cpu"), "Docker daemon")
    assert c.ok is False and c.detail.startswith("not running (no socket there)")
    assert "systemctl start docker" in c.fix


def test_daemon_not_running_stale_socket(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # bound, never listening: connect() is refused, as after a crash
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        c = _check(doctor_mod.run_checks(cuda="cpu"), "Docker daemon")
    finally:
        stale.close()
    assert c.ok is False and c.detail.startswith("not running (nothing listens there)")
    assert "systemctl start docker" in c.fix


def _permission_denied() -> Exception:
    """What docker.from_env raises for a socket the user may not open (SDK 7)."""
    import requests
    from docker.errors import DockerException
    from urllib3.exceptions import ProtocolError

    inner = PermissionError(13, "Permission denied")
    wrapped = requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", inner))
    exc = DockerException(f"Error while fetching server API version: {wrapped}")
    exc.__cause__ = wrapped
    return exc


def test_no_permission_on_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    def refuse(**kw: Any) -> Any:
        raise _permission_denied()

    monkeypatch.setattr(docker, "from_env", refuse)
    c = _check(doctor_mod.run_checks(cuda="cpu"), "Docker daemon")
    assert c.ok is False and c.detail.startswith("permission denied on its socket")
    assert "usermod -aG docker" in c.fix and "systemctl start" not in c.fix
    # the same words where a run meets it: one line, with the fix
    with pytest.raises(ImageError) as exc:
        images_registry.docker_client()
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("cannot reach the Docker daemon at ")
    assert "permission denied" in msg and "usermod -aG docker" in msg


class _Image:
    id = "sha256:" + "1" * 64
    attrs: dict[str, Any] = {"RepoDigests": []}


class _Api:
    def __init__(self, registry_error: Exception | None) -> None:
        self.registry_error = registry_error

    def inspect_distribution(self, ref: str) -> dict[str, Any]:
        if self.registry_error:
            raise self.registry_error
        return {"Descriptor": {"digest": "sha256:" + "2" * 64}}


class _Client:
    def __init__(self, present: bool = True, runtimes: tuple[str, ...] = ("runc",),
                 registry_error: Exception | None = None) -> None:
        from docker.errors import ImageNotFound

        self.api = _Api(registry_error)
        self.runtimes = runtimes
        self.present = present

        class _Images:
            def get(inner, ref: str) -> _Image:
                if not self.present:
                    raise ImageNotFound(ref)
                return _Image()

        self.images = _Images()

    def version(self) -> dict[str, str]:
        return {"Version": "28.0.0", "ApiVersion": "1.48"}

    def info(self) -> dict[str, Any]:
        return {"Runtimes": {r: {} for r in self.runtimes}}


def _unreachable() -> Exception:
    from docker.errors import APIError

    return APIError("500 Server Error", explanation=(
        "Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection "
        "refused"))


def _doctor(monkeypatch: pytest.MonkeyPatch, client: _Client, *args: str):
    monkeypatch.setattr(images_registry, "docker_client", lambda timeout=60: client)
    import typer

    app = typer.Typer()
    app.command()(doctor_mod.doctor)
    return CliRunner().invoke(app, ["--registry", "127.0.0.1:5999", *args])


def test_registry_unreachable_but_local_image_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _doctor(monkeypatch, _Client(present=True, registry_error=_unreachable()),
                "--cuda", "cpu")
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if "Registry:" in ln)
    assert line.startswith("--") and "127.0.0.1:5999: unreachable" in line
    assert "the chosen image is present locally, so runs can use it" in line
    assert "FAIL" not in r.output


def test_registry_unreachable_and_no_local_image_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _doctor(monkeypatch, _Client(present=False, registry_error=_unreachable()),
                "--cuda", "cpu")
    assert r.exit_code == 1
    assert "FAIL Registry: 127.0.0.1:5999: unreachable" in r.output
    assert "fix: check network access to 127.0.0.1:5999" in r.output


def test_registry_that_does_not_answer_in_time_is_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    r = _doctor(monkeypatch, _Client(present=False, registry_error=requests.exceptions
                                     .ReadTimeout("read timed out")), "--cuda", "cpu")
    assert r.exit_code == 1 and "FAIL Registry: 127.0.0.1:5999: unreachable" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_gpu_host_without_the_container_toolkit(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _doctor(monkeypatch, _Client(runtimes=("runc",)), "--cuda", "12.8")
    assert r.exit_code == 1
    assert "FAIL NVIDIA container runtime: runtimes: runc" in r.output
    assert "install nvidia-container-toolkit" in r.output
    ok = _doctor(monkeypatch, _Client(runtimes=("runc", "nvidia")), "--cuda", "12.8")
    assert ok.exit_code == 0, ok.output
    assert "NVIDIA container runtime: nvidia runtime registered" in ok.output


def test_cpu_host_needs_no_toolkit(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _doctor(monkeypatch, _Client(runtimes=("runc",)), "--cuda", "cpu")
    assert r.exit_code == 0, r.output
    assert "NVIDIA container runtime: not needed on a CPU-only host" in r.output
