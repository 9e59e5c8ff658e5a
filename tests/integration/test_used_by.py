"""The used-by story (issue 14), as a user meets it, against a real dockerd and registry.

The user's own config file (platformdirs' user config dir, here under a HOME and
XDG_CONFIG_HOME of the test's own) names a local registry as the default. Then:

- ``llem run --backend pytorch examples/quickstart.yaml --runtime docker`` with no image
  here pulls the CPU image from that registry, with per-layer progress, runs in it, and the
  result records the registry's digest of the image;
- ``llem run --backend tensorrt examples/quickstart.yaml`` (the quickstart's own local
  runtime, and ``--runtime docker``) on this CPU host says in one line that the engine
  needs an NVIDIA GPU, exits 2 and pulls nothing.

(The quickstart pins ``runtime: local``, so the container run asks for ``--runtime docker``.)

The image is the shared CPU test image plus one layer of its own (8 MB of random bytes),
pushed under a registry path only this test uses (``<registry>/it14-<random>``): the pull
then downloads a real layer without removing the shared image, which other tests (and a CI
job on the same daemon) use. Everything made here is removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from it_registry import build_on, forget_repo, purge_prefix, push, shared_image
from llem_it import REPO, base_env, docker_skip_reason, llem, load_result, one_line

_REASON = docker_skip_reason()
pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

QUICKSTART = REPO / "examples" / "quickstart.yaml"


@pytest.fixture
def user(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user of our own: HOME and XDG_CONFIG_HOME under tmp_path, nothing of llem set."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    env = base_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                   FORCE_COLOR="1", COLUMNS="120")
    yield env


def write_user_config(env: dict[str, str], registry: str) -> Path:
    """``registry:`` in the file the launcher reads, found the way the launcher finds it."""
    import subprocess
    import sys

    where = subprocess.run(
        [sys.executable, "-c", "from llem.images.refs import user_config_path as p; print(p())"],
        capture_output=True, text=True, env=env, timeout=60, check=True).stdout.strip()
    path = Path(where)
    assert path == Path(env["XDG_CONFIG_HOME"]) / "llem" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"registry: {registry}\n")
    return path


@pytest.fixture
def own_registry(it_env, client) -> Iterator[str]:
    """A registry prefix only this test uses, emptied (registry and local store) afterwards."""
    prefix = f"{it_env['LLEM_IT_OPEN_REGISTRY']}/it14-{uuid.uuid4().hex[:10]}"
    yield prefix
    purge_prefix(client, prefix)


def _names(client, needle: str) -> set[str]:
    """Local image names (tags and digests) containing ``needle``."""
    return {t for img in client.images.list()
            for t in (img.attrs.get("RepoTags") or []) + (img.attrs.get("RepoDigests") or [])
            if needle in t}


def test_pytorch_pulls_from_the_users_registry_runs_and_records_the_digest(
        tmp_path, it_env, client, user, own_registry):
    ref = f"{own_registry}/llenergymeasure/pytorch:{it_env['LLEM_IT_VERSION']}-cpu"
    repo, tag = ref.rsplit(":", 1)
    write_user_config(user, own_registry)
    build_on(client, shared_image(client, it_env).id, ref, blob_bytes=8_000_000)
    digest = push(client, repo, tag)
    forget_repo(client, repo)  # the image (its own layer with it) is gone from this host
    assert not _names(client, own_registry)

    r = llem("run", "--backend", "pytorch", str(QUICKSTART), "--runtime", "docker",
             "--results-dir", str(tmp_path / "results"), env=user, timeout=1500)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Downloading" in r.stderr or "Pull complete" in r.stderr, out  # per-layer progress
    env = load_result(tmp_path / "results")["environment"]
    assert env["runtime"] == "docker"
    assert env["image_ref"] == ref
    assert env["image_digest"] == digest
    img = client.images.get(ref)
    assert f"{repo}@{digest}" in img.attrs["RepoDigests"]
    assert not client.containers.list(all=True, filters={"ancestor": img.id})


@pytest.mark.parametrize("runtime", [None, "docker"])
def test_tensorrt_on_a_cpu_host_says_gpu_in_one_line_and_pulls_nothing(
        tmp_path, client, user, own_registry, runtime):
    write_user_config(user, own_registry)
    args = ["run", "--backend", "tensorrt", str(QUICKSTART),
            "--results-dir", str(tmp_path / "results")]
    if runtime:
        args += ["--runtime", runtime]
    r = llem(*args, env=user, timeout=600)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "the tensorrt engine needs an NVIDIA GPU and driver; this host has none" in \
        one_line(r)
    assert not list((tmp_path / "results").rglob("result.json"))
    # no image appeared: nothing from the user's registry, no tensorrt image from anywhere
    # (other images may come and go meanwhile: a CI job shares this daemon)
    assert not _names(client, own_registry)
    assert not _names(client, "/tensorrt:") and not _names(client, "/tensorrt@")
