"""Digests mean something everywhere (issue 14), the parts that need no daemon: a bundle's
lock checked against what the bundle holds, the mirror's references, the build's labels and
its clean-up. The daemon side is tests/integration/test_docker_digests.py.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from llem.images import bundle
from llem.images import refs as images_refs
from llem.images import resolve as images_resolve
from llem.images.base import ImageError
from llem.images.lock import LockEntry, LockFile
from llem.images.matrix import load_matrix
from llem.images.refs import mirror_ref
from llem.images.resolve import resolve_image
from llem_schema.errors import ConfigError

REPO = Path(__file__).resolve().parents[4]
PYTHONPATH = ":".join(str(REPO / p) for p in ("launcher", "entrypoints", "schemas"))
REF = "r.example/llenergymeasure/pytorch:0.1.0-cpu"
ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64


def _docker_save_tar(path: Path, tags: dict[str, str], oci: bool = False) -> Path:
    """What ``docker save`` writes, as far as a bundle check reads it: manifest.json naming
    each image's config by its digest (``<hex>.json`` before docker 25, a blob after)."""
    items = []
    with tarfile.open(path, "w") as tar:
        for tag, image_id in tags.items():
            hexid = image_id.split(":", 1)[1]
            config = f"blobs/sha256/{hexid}" if oci else f"{hexid}.json"
            data = b"{}"
            info = tarfile.TarInfo(config)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            items.append({"Config": config, "RepoTags": [tag], "Layers": []})
        data = json.dumps(items).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _lock(image_id: str = ID_A, ref: str = REF) -> LockFile:
    return LockFile(images={"pytorch": LockEntry(ref=ref, digest="sha256:" + "d" * 64,
                                                 image_id=image_id)})


@pytest.mark.parametrize("oci", [False, True])
def test_bundle_index_and_check(tmp_path: Path, oci: bool) -> None:
    tar = _docker_save_tar(tmp_path / "b.tar", {REF: ID_A}, oci=oci)
    index = bundle.read_index(tar)
    assert index.tags == {REF: ID_A} and index.lock is None
    bundle.check("in b.tar", index, _lock(), "nothing was loaded")  # the pinned bytes: ok
    with pytest.raises(ConfigError) as exc:
        bundle.check("in b.tar", index, _lock(ID_B), "nothing was loaded")
    msg = str(exc.value)
    assert "\n" not in msg and "refused" in msg and ID_A[:19] in msg and ID_B[:19] in msg
    with pytest.raises(ConfigError, match="no image other.example/x:1, which the lock pins"):
        bundle.check("in b.tar", index, _lock(ref="other.example/x:1"), "nothing was loaded")


def test_the_lock_travels_inside_the_bundle(tmp_path: Path) -> None:
    tar = _docker_save_tar(tmp_path / "b.tar", {REF: ID_A})
    bundle.append_lock(tar, _lock())
    index = bundle.read_index(tar)
    assert index.lock == _lock() and index.tags == {REF: ID_A}
    with tarfile.open(tar) as t:  # still a docker save archive, with one more file
        assert t.getnames() == [f"{'a' * 64}.json", "manifest.json", bundle.BUNDLE_LOCK]


def test_not_a_bundle_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_text("not a tar")
    with pytest.raises(ConfigError, match="not a readable image bundle"):
        bundle.read_index(tmp_path / "x.tar")


def test_save_refuses_a_folder_without_room(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before the first byte, naming the bundle, both sizes and the fix."""
    free = 3 * 10**9
    usage = shutil.disk_usage(tmp_path)._replace(free=free)
    monkeypatch.setattr(bundle.shutil, "disk_usage", lambda _p: usage)
    bundle.check_room(tmp_path / "b.tar", free - bundle.HEADROOM)  # just fits
    with pytest.raises(ConfigError) as err:
        bundle.check_room(tmp_path / "b.tar", 5 * 10**9)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "b.tar") in msg
    assert "3.0 GB free" in msg and "at least 5.1 GB" in msg and "another -o" in msg
    assert not list(tmp_path.iterdir())


def test_save_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; create it or choose another -o"):
        bundle.check_room(tmp_path / "nope" / "b.tar", 1)


def test_a_disk_that_fills_mid_save_is_one_line() -> None:
    """/dev/full answers every write with ENOSPC: the real error, no mock."""
    with pytest.raises(ImageError) as err:
        bundle.write(iter([b"x" * 2**20] * 4), Path("/dev/full"), Path("/data/b.tar"))
    msg = str(err.value)
    assert msg.startswith("writing /data/b.tar: No space left on device; nothing was saved")
    assert "\n" not in msg and "free space in /data or choose another -o" in msg


def _images_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from llem.cli import main; sys.argv[0] = 'llem'; main()"
    env = {"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    return subprocess.run([sys.executable, "-c", code, "images", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("where", ["inside", "given"])
def test_load_refuses_a_mismatch_before_loading(tmp_path: Path, where: str) -> None:
    """exit 2, one line, and the daemon is never asked (there is none here)."""
    tar = _docker_save_tar(tmp_path / "b.tar", {REF: ID_B})
    args = ["load", "-i", str(tar)]
    if where == "inside":
        bundle.append_lock(tar, _lock(ID_A))
    else:
        bundle.append_lock(tar, _lock(ID_B))  # the bundle agrees with itself ...
        _lock(ID_A).write(tmp_path / "llem.lock")  # ... not with the lock the user runs
        args += ["--lock", str(tmp_path / "llem.lock")]
    r = _images_cli(*args, tmp_path=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(lines) == 1 and "refused; nothing was loaded" in lines[0], r.stderr
    assert "Docker daemon" not in r.stderr


def test_mirror_writes_what_registry_resolves(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """The source registry's own path (ghcr.io/llenergymeasure) is not carried over: the
    mirrored reference is the one `--registry TO` resolves to."""
    monkeypatch.setattr(images_refs, "user_config_path", lambda: tmp_path / "none.yaml")
    monkeypatch.setattr(images_resolve, "detect_driver_cuda", lambda override=None: None)
    ns = load_matrix().namespace
    for source in (load_matrix().registry, "127.0.0.1:5000", "reg.lab/team/sub"):
        src = resolve_image("pytorch", registry=source).ref
        for to in ("mirror.lab:5000", "mirror.lab:5000/a/b/"):
            want = resolve_image("pytorch", registry=to.rstrip("/")).ref
            assert mirror_ref("pytorch", src, to, ns) == want, (source, to)
    with pytest.raises(ConfigError, match="credentials"):
        mirror_ref("pytorch", src, "u:p@mirror.lab", ns)


# --------------------------------------------------------------------------- build


def _dockerfile(backend: str) -> str:
    return (REPO / "images" / f"{backend}.Dockerfile").read_text()


@pytest.mark.parametrize("backend", ["pytorch", "vllm", "tensorrt"])
def test_final_stage_redeclares_the_args_its_labels_use(backend: str) -> None:
    """An ARG of the global scope (before the first FROM) is empty after a FROM unless
    declared again there: every ${VAR} the final stage's LABEL uses is an ARG of that stage."""
    text = _dockerfile(backend)
    final = text[[m.start() for m in re.finditer(r"^FROM ", text, re.M)][-1]:]
    label = final[final.index("LABEL"):]
    label = label[:label.index("\nUSER")]
    used = set(re.findall(r"\$\{(\w+)\}", label))
    declared = set(re.findall(r"^ARG (\w+)", final[:final.index("LABEL")], re.M))
    assert {"BASE_IMAGE", "ENGINE_VERSION"} <= used
    assert used <= declared, used - declared
    assert 'org.opencontainers.image.base.name="${BASE_IMAGE}"' in label
    assert 'io.llenergymeasure.engine.version="${ENGINE_VERSION}"' in label


def test_every_image_has_an_engine_version() -> None:
    """From `engines:` (vllm, tensorrt) or the entry itself (torch for pytorch), and the
    entry's agrees with its base image tag or the torch pin of its wheelhouse."""
    m = load_matrix()
    for e in m.images:
        v = m.engine_version(e)
        assert v != "unknown", e
        if e.backend == "pytorch":
            tag = re.match(r"pytorch/pytorch:(\d+\.\d+\.\d+)-", e.base_image)
            pin = [a.split("==")[1] for a in e.pip_args if a.startswith("torch==")]
            assert v == (tag.group(1) if tag else pin[0]), e


def test_the_workflow_passes_the_same_engine_version() -> None:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "images.yml").read_text())
    build = next(s for s in wf["jobs"]["build"]["steps"] if s.get("id") == "build")
    assert "ENGINE_VERSION=${{ matrix.engine_version }}" in build["with"]["build-args"]
    assert "BASE_IMAGE=${{ matrix.base_image }}" in build["with"]["build-args"]


class _Img:
    def __init__(self, id_: str) -> None:
        self.id = id_


class _Images:
    def __init__(self, dangling: list[str]) -> None:
        self.dangling = dangling
        self.removed: list[str] = []

    def list(self, filters: dict) -> list[_Img]:
        assert filters == {"dangling": True}
        return [_Img(i) for i in self.dangling]

    def remove(self, image: str, noprune: bool = False) -> None:
        assert noprune is False  # its untagged parents (earlier steps) go with it
        self.removed.append(image)


def test_build_removes_only_its_own_dangling_steps() -> None:
    from llem.cli.images import STEP_IMAGE, remove_dangling

    stream = ("Step 4/18 : RUN python3 -m venv ...\n ---> Running in 0123456789ab\n"
              "Removing intermediate container 0123456789ab\n ---> 5d1f2e3c4b5a\n"
              "Step 5/18 : FROM base\n ---> Using cache\n ---> 86a596b1d257\n")
    steps = set(STEP_IMAGE.findall(stream))
    assert steps == {"5d1f2e3c4b5a", "86a596b1d257"}
    mine, other = "sha256:5d1f2e3c4b5a" + "0" * 52, "sha256:" + "e" * 64
    client = type("C", (), {})()
    client.images = _Images([mine, other])
    assert remove_dangling(client, steps) == [mine]
    assert client.images.removed == [mine]
