"""Helpers for integration tests that push to the setup's registry under a prefix of their
own (``<registry>/it14-<random>``) and must leave nothing behind: not in the local image
store, not in the registry (imported by name, like llem_it)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
import urllib.request
import uuid
from pathlib import Path

from llem_it import STATE

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
])
#: the setup's registries keep their data here (.ci/integration-setup.sh)
STORAGE = STATE / "registry-storage" / "docker" / "registry" / "v2"


def forget_repo(client, repo: str) -> None:
    """Drop every local tag/digest of ``repo`` (an image goes with its last name)."""
    from docker.errors import APIError, ImageNotFound

    for img in client.images.list():
        for ref in (img.attrs.get("RepoTags") or []) + (img.attrs.get("RepoDigests") or []):
            if ref.startswith((repo + ":", repo + "@")):
                with contextlib.suppress(ImageNotFound, APIError):
                    client.images.remove(ref)


def forget_prefix(client, prefix: str) -> None:
    """:func:`forget_repo` for every repository under ``prefix``."""
    repos = {ref.rsplit("@", 1)[0].rsplit(":", 1)[0]
             for img in client.images.list()
             for ref in (img.attrs.get("RepoTags") or []) + (img.attrs.get("RepoDigests") or [])
             if ref.startswith(prefix + "/")}
    for repo in repos:
        forget_repo(client, repo)


def _delete_manifests(repo: str) -> None:
    host, path = repo.split("/", 1)
    base = f"http://{host}/v2/{path}"
    try:
        with urllib.request.urlopen(f"{base}/tags/list", timeout=30) as r:
            tags = json.load(r).get("tags") or []
    except OSError:
        return
    for tag in tags:
        with contextlib.suppress(OSError):
            req = urllib.request.Request(f"{base}/manifests/{tag}", method="HEAD",
                                         headers={"Accept": MANIFEST_TYPES})
            with urllib.request.urlopen(req, timeout=30) as r:
                digest = r.headers["Docker-Content-Digest"]
            urllib.request.urlopen(urllib.request.Request(
                f"{base}/manifests/{digest}", method="DELETE"), timeout=30).close()


def _linked(root: Path) -> set[str]:
    """Blob digests (hex) that the repositories under ``root`` link to."""
    return {p.name for pat in ("_layers/sha256/*", "_manifests/revisions/sha256/*")
            for p in root.rglob(pat)} if root.is_dir() else set()


def purge_prefix(client, prefix: str) -> None:
    """Remove ``<host:port>/it14-...`` from the local store and from the registry: its
    manifests through the registry's API, then its repositories and the blobs no other
    repository links to from the setup's registry storage (the API deletes no blob data)."""
    forget_prefix(client, prefix)
    host, top = prefix.split("/", 1)
    assert top.startswith("it14-") and "/" not in top, prefix
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(f"http://{host}/v2/_catalog?n=100000", timeout=30) as r:
            catalog = json.load(r).get("repositories") or []
        for repo in catalog:
            if repo.startswith(top + "/"):
                _delete_manifests(f"{host}/{repo}")
    repos = STORAGE / "repositories" / top
    if not repos.is_dir():
        return
    ours = _linked(repos)
    shutil.rmtree(repos, ignore_errors=True)
    for h in ours - _linked(STORAGE / "repositories"):
        shutil.rmtree(STORAGE / "blobs" / "sha256" / h[:2] / h, ignore_errors=True)


def push(client, repo: str, tag: str) -> str:
    """Push and return the registry's manifest digest."""
    digest = None
    for ev in client.images.push(repo, tag, stream=True, decode=True):
        assert "error" not in ev, ev
        digest = (ev.get("aux") or {}).get("Digest", digest)
    assert digest and digest.startswith("sha256:")
    return digest


def build_on(client, base: str, tag: str, blob_bytes: int = 0) -> str:
    """``FROM base`` + a unique label (+ a layer of random bytes): an image id of its own."""
    lines = [f"FROM {base}", f"LABEL io.llenergymeasure.it14={uuid.uuid4().hex}"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if blob_bytes:
            data = os.urandom(blob_bytes)
            info = tarfile.TarInfo("blob")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            lines.append("COPY blob /opt/it14-blob")
        df = ("\n".join(lines) + "\n").encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
    buf.seek(0)
    img, _ = client.images.build(fileobj=buf, custom_context=True, tag=tag,
                                 network_mode="none", rm=True, forcerm=True, timeout=600)
    return img.id


def shared_image(client, it_env: dict[str, str], wait_s: float = 900):
    """The shared CPU test image, under either of the names the setup gives it. A CI job on
    the same daemon removes and restores it in its own tests (test_docker_images's bundle
    test): wait for it to be back rather than fail on that."""
    import time

    from docker.errors import ImageNotFound

    deadline = time.monotonic() + wait_s
    while True:
        for ref in (it_env["LLEM_IT_IMAGE"], "llem-test/pytorch:ci"):
            with contextlib.suppress(ImageNotFound):
                return client.images.get(ref)
        assert time.monotonic() < deadline, "the shared test image did not come back"
        time.sleep(5)
