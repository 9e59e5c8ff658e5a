"""Real dockerd + real registries, brought up by .ci/integration-setup.sh.

Every test here is skipped, with the reason, when the daemon or the setup's state file is
missing, so a unit-only run stays green on a machine without Docker.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from llem_it import STATE, docker_skip_reason, kill_launchers, own_containers


def _read_env() -> dict[str, str] | None:
    f = STATE / "env"
    if not f.is_file():
        return None
    out = {}
    for line in f.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


_REASON = docker_skip_reason()


def pytest_collection_modifyitems(config, items):
    for item in items:
        # only this suite's files: the Slurm tests beside them have their own skip logic
        if Path(str(item.fspath)).name.startswith("test_docker_"):
            item.add_marker(pytest.mark.integration)
            if _REASON:
                item.add_marker(pytest.mark.skip(reason=_REASON))


@pytest.fixture(scope="session")
def it_env() -> dict[str, str]:
    env = _read_env()
    assert env is not None
    return env


@pytest.fixture(scope="session")
def client():
    import docker

    c = docker.from_env(timeout=600)
    yield c
    c.close()


@pytest.fixture
def docker_config(tmp_path: Path) -> Iterator[Path]:
    """An empty Docker client config dir: tests log in without touching ~/.docker."""
    d = tmp_path / "docker-config"
    d.mkdir()
    (d / "config.json").write_text("{}")
    yield d


@pytest.fixture
def launched(client, tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    """Launchers the test starts (appended to the list) are killed, and llem's containers
    under its tmp_path removed, however the test ends."""
    procs: list[subprocess.Popen] = []
    yield procs
    kill_launchers(procs)
    for c in own_containers(client, tmp_path):
        c.remove(force=True)
