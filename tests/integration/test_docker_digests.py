"""Digests mean something everywhere (issue 14), against the real daemon and registry:

- ``llem images save --lock`` writes exactly the pinned images (and refuses a tag that moved
  off the pinned one), and ``llem images load`` checks the bundle against its lock (or one
  given), refusing a mismatch in one line with exit 2 before loading anything;
- ``llem images mirror`` writes references that ``--registry`` then finds, also from a
  source registry with a path of its own (as the default ghcr.io/llenergymeasure has);
- ``llem images build`` labels the image with its base image and engine version, and leaves
  no dangling image of its own behind (the multi-stage build's install stage).

Every name made here is under ``<registry>/it14-<random>``, removed again with its registry
data; the shared test image is only tagged (under such names) and never removed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from it_registry import build_on, forget_prefix, purge_prefix, push, shared_image
from llem_it import REPO, llem, llem_images, load_result, one_line

from llem.images import bundle


def _prefix(it_env: dict[str, str], what: str = "") -> str:
    return f"{it_env['LLEM_IT_OPEN_REGISTRY']}/it14-{uuid.uuid4().hex[:10]}{what}"


@pytest.fixture
def prefixes(client) -> Iterator[list[str]]:
    """Registry prefixes a test makes; purged (local store and registry) afterwards."""
    made: list[str] = []
    yield made
    for p in made:
        purge_prefix(client, p)


def _study(tmp_path: Path) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump({"name": "locked", "base": {"backend": "pytorch"}}))
    return p


def test_save_lock_exports_the_pinned_image_and_load_verifies_it(
        tmp_path, it_env, client, prefixes):
    prefixes.append(prefix := _prefix(it_env))
    ref = f"{prefix}/llenergymeasure/pytorch:{it_env['LLEM_IT_VERSION']}-cpu"
    repo, tag = ref.rsplit(":", 1)
    pinned_id = build_on(client, "scratch", ref, blob_bytes=4096)
    digest = push(client, repo, tag)
    lock = tmp_path / "llem.lock"
    r = llem_images("lock", str(_study(tmp_path)), "--registry", prefix, "--cuda", "cpu",
                    "-o", str(lock))
    assert r.returncode == 0, r.stderr
    entry = yaml.safe_load(lock.read_text())["images"]["pytorch"]
    assert entry == {"ref": ref, "digest": digest, "image_id": pinned_id}

    # exactly the pinned image, under its tag, and the lock of it inside
    out = tmp_path / "bundle.tar"
    r = llem_images("save", "--lock", str(lock), "-o", str(out))
    assert r.returncode == 0, r.stderr
    index = bundle.read_index(out)
    assert index.tags == {ref: pinned_id}
    assert index.lock is not None and index.lock.model_dump(mode="json") == \
        yaml.safe_load(lock.read_text())

    # no folder to write into: refused before the daemon streams anything
    r = llem_images("save", "--lock", str(lock), "-o", str(tmp_path / "no" / "b.tar"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "does not exist; create it or choose another -o" in one_line(r)

    # the tag moved to other bytes: nothing is saved under the lock
    other_id = build_on(client, "scratch", ref, blob_bytes=4096)
    assert other_id != pinned_id
    r = llem_images("save", "--lock", str(lock), "-o", str(tmp_path / "moved.tar"))
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_line(r)
    assert "refused" in line and pinned_id[:19] in line and other_id[:19] in line
    assert not (tmp_path / "moved.tar").exists()
    assert not list(tmp_path.glob(".moved.tar*"))

    # on a host without it: loaded and verified
    forget_prefix(client, prefix)
    assert not [i for i in client.images.list() if i.id in (pinned_id, other_id)]
    r = llem_images("load", "-i", str(out))
    assert r.returncode == 0, r.stderr
    assert f"verified pytorch: {ref} {pinned_id[:19]}" in r.stdout
    assert client.images.get(ref).id == pinned_id

    # a lock that pins other bytes: refused before anything is loaded
    forget_prefix(client, prefix)
    wrong = tmp_path / "wrong.lock"
    wrong.write_text(lock.read_text().replace(pinned_id, other_id))
    r = llem_images("load", "-i", str(out), "--lock", str(wrong))
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_line(r)
    assert "refused; nothing was loaded" in line and other_id[:19] in line
    assert not [i for i in client.images.list() if i.id == pinned_id]


def test_mirror_writes_what_registry_then_finds(tmp_path, it_env, client, prefixes):
    """From a source registry with a path (like ghcr.io/llenergymeasure) to a mirror: a run
    with ``--registry MIRROR`` resolves to what was pushed there, pulls it and runs."""
    prefixes.append(src := _prefix(it_env, "-src"))
    prefixes.append(mirror := _prefix(it_env, "-mirror"))
    name = f"llenergymeasure/pytorch:{it_env['LLEM_IT_VERSION']}-cpu"
    shared_image(client, it_env).tag(*f"{src}/{name}".rsplit(":", 1))
    r = llem_images("mirror", "--to", mirror, "--registry", src)
    assert r.returncode == 0, r.stderr
    m = re.search(rf"^{re.escape(f'{mirror}/{name}')} (sha256:[0-9a-f]{{64}})$", r.stdout, re.M)
    assert m, r.stdout
    forget_prefix(client, src)
    forget_prefix(client, mirror)  # the run must find it in the mirror, not here

    run = llem("run", "--preset", "quick-test", "--runtime", "docker", "--registry", mirror,
               "--results-dir", str(tmp_path / "res"), timeout=1500)
    assert run.returncode == 0, run.stdout + run.stderr
    env = load_result(tmp_path / "res")["environment"]
    assert env["image_ref"] == f"{mirror}/{name}"
    assert env["image_digest"] == m.group(1)


def _stub_wheel(wheelhouse: Path, version: str) -> None:
    """A wheel of llenergymeasure with empty import packages: enough for the Dockerfile's
    install stage (pip --no-index, then `import llem_harness, llem_schema`), in seconds."""
    dist = f"llenergymeasure-{version}.dist-info"
    files = {
        "llem_harness/__init__.py": b"",
        "llem_schema/__init__.py": b"",
        f"{dist}/METADATA": (f"Metadata-Version: 2.1\nName: llenergymeasure\nVersion: "
                             f"{version}\nProvides-Extra: pytorch\n").encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: it14\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={h},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheelhouse.mkdir()
    with zipfile.ZipFile(wheelhouse / f"llenergymeasure-{version}-py3-none-any.whl", "w") as z:
        for path, data in files.items():
            z.writestr(path, data)


def test_build_labels_base_and_engine_and_leaves_nothing_dangling(
        tmp_path, it_env, client, prefixes):
    from llem.cli.images import STEP_IMAGE, remove_dangling
    from llem.images.matrix import load_matrix

    prefixes.append(prefix := _prefix(it_env))
    version = it_env["LLEM_IT_VERSION"]
    _stub_wheel(tmp_path / "wheelhouse", version)
    steps: set[str] = set()
    try:
        r = llem_images("build", "pytorch", "--cuda", "cpu", "--registry", prefix,
                        "--base-image", it_env["LLEM_IT_BASE_IMAGE"], "--network", "none",
                        "--wheelhouse", str(tmp_path / "wheelhouse"), "--source", str(REPO),
                        timeout=1500)
        steps = set(STEP_IMAGE.findall(r.stderr))
        assert r.returncode == 0, r.stdout + r.stderr
        ref = f"{prefix}/llenergymeasure/pytorch:{version}-cpu"
        labels = client.images.get(ref).labels
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        matrix = load_matrix()
        assert labels["org.opencontainers.image.base.name"] == it_env["LLEM_IT_BASE_IMAGE"]
        assert labels["io.llenergymeasure.engine.version"] == \
            matrix.engine_version(matrix.entry("pytorch", "cpu")) == "2.13.0"
        assert labels["org.opencontainers.image.version"] == version
        assert labels["org.opencontainers.image.revision"] == (rev or "unknown")
        assert labels["io.llenergymeasure.backend"] == "pytorch"
        assert labels["io.llenergymeasure.cuda"] == "cpu"
        # two stages, so at least two images made by steps; none of them left dangling
        assert len(steps) >= 2, r.stderr
        dangling = {i.id.split(":", 1)[1] for i in client.images.list(filters={"dangling": True})}
        assert not [d for d in dangling if any(d.startswith(s) for s in steps)]
    finally:
        remove_dangling(client, steps)  # only when the build's own clean-up did not
