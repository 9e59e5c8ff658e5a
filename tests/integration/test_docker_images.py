"""`llem images ...` against real registries: auth pull, lock by digest, save/load, mirror."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from llem_it import STATE, base_env, llem, llem_images, load_result, one_line

from llem.images.bundle import HEADROOM


def _login(cfg: Path, registry: str, user: str, password: str) -> None:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {registry: {"auth": token}}}))


def _rmi(client, ref: str) -> None:
    from docker.errors import ImageNotFound

    with contextlib.suppress(ImageNotFound):
        client.images.remove(ref)


def test_pull_from_auth_registry_shows_progress(tmp_path, it_env, client, docker_config):
    reg = it_env["LLEM_IT_AUTH_REGISTRY"]
    ref = f"{reg}/{it_env['LLEM_IT_SMALL_IMAGE']}"
    _rmi(client, ref)
    password = it_env["LLEM_IT_REGISTRY_PASSWORD"]
    _login(docker_config, reg, it_env["LLEM_IT_REGISTRY_USER"], password)
    env = base_env(DOCKER_CONFIG=str(docker_config), FORCE_COLOR="1", COLUMNS="120")
    r = llem_images("pull", "--image", ref, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Downloading" in out or "Pull complete" in out, out  # per-layer progress rows
    assert password not in out
    img = client.images.get(ref)
    digest = next(d.split("@")[1] for d in img.attrs["RepoDigests"] if d.startswith(reg))
    assert digest in r.stdout
    _rmi(client, ref)


def test_wrong_password_is_one_line(tmp_path, it_env, client, docker_config):
    reg = it_env["LLEM_IT_AUTH_REGISTRY"]
    ref = f"{reg}/{it_env['LLEM_IT_SMALL_IMAGE']}"
    _rmi(client, ref)
    _login(docker_config, reg, it_env["LLEM_IT_REGISTRY_USER"], "not-the-password-xyz")
    r = llem_images("pull", "--image", ref, env=base_env(DOCKER_CONFIG=str(docker_config)))
    assert r.returncode == 1
    assert f"docker login {reg}" in one_line(r) and "not-the-password-xyz" not in r.stderr


def _study(tmp_path: Path) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump({"name": "locked", "base": {"backend": "pytorch"}}))
    return p


def test_lock_runs_by_digest_and_refuses_a_retagged_image(tmp_path, it_env, client):
    reg = it_env["LLEM_IT_OPEN_REGISTRY"]
    lock = tmp_path / "llem.lock"
    r = llem_images("lock", str(_study(tmp_path)), "--registry", reg, "-o", str(lock))
    assert r.returncode == 0, r.stderr
    entry = yaml.safe_load(lock.read_text())["images"]["pytorch"]
    assert entry["ref"] == it_env["LLEM_IT_IMAGE"] and entry["digest"].startswith("sha256:")

    ok = llem("run", "--preset", "quick-test", "--runtime", "docker", "--lock", str(lock),
              "--results-dir", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert load_result(tmp_path / "ok")["environment"]["image_digest"] == entry["digest"]

    # Re-tag the reference onto a different image: same name, different bytes.
    original = client.images.get(it_env["LLEM_IT_IMAGE"])
    other, _ = client.images.build(
        fileobj=__import__("io").BytesIO(
            f"FROM {it_env['LLEM_IT_IMAGE']}\nLABEL tampered=1\n".encode()),
        network_mode="none", rm=True)
    try:
        other.tag(it_env["LLEM_IT_IMAGE"])
        # the pinned manifest digest is no longer present under that name
        client.images.remove(f"{it_env['LLEM_IT_IMAGE'].rsplit(':', 1)[0]}@{entry['digest']}")
        bad = llem("run", "--preset", "quick-test", "--runtime", "docker", "--lock", str(lock),
                   "--pull", "never", "--results-dir", str(tmp_path / "bad"))
        assert bad.returncode != 0
        assert "refused" in bad.stdout + bad.stderr, bad.stdout + bad.stderr
        assert not list((tmp_path / "bad").rglob("result.json"))
    finally:
        original.tag(it_env["LLEM_IT_IMAGE"])
        client.images.remove(other.id, force=True)


def _start_registry(tmp_path: Path, port: int) -> subprocess.Popen:
    conf = tmp_path / "reg.yml"
    conf.write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "reg-data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    proc = subprocess.Popen(["docker-registry", "serve", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    for _ in range(60):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.25)
    proc.kill()
    pytest.fail("private registry did not start")


def test_mirror_save_load_and_run_with_registry_stopped(tmp_path, it_env, client):
    """Private mirror -> bundle -> image removed -> bundle loaded -> run, mirror down."""
    port = 5055
    mirror = f"127.0.0.1:{port}"
    reg_proc = _start_registry(tmp_path, port)
    mirrored = it_env["LLEM_IT_IMAGE"].replace(it_env["LLEM_IT_OPEN_REGISTRY"], mirror)
    original = client.images.get(it_env["LLEM_IT_IMAGE"])
    tags = list(original.tags)
    try:
        r = llem_images("mirror", "--to", mirror, "--registry", it_env["LLEM_IT_OPEN_REGISTRY"])
        assert r.returncode == 0, r.stderr
        assert mirrored in r.stdout
        bundle = tmp_path / "bundle.tar"
        r = llem_images("save", "-o", str(bundle), "--registry", mirror)
        assert r.returncode == 0, r.stderr
        assert bundle.stat().st_size > 100_000_000
        client.images.remove(original.id, force=True)  # every tag of it: really gone
        assert not [i for i in client.images.list() if i.id == original.id]
        reg_proc.send_signal(signal.SIGTERM)
        reg_proc.wait(timeout=30)
        shutil.rmtree(tmp_path / "reg-data")  # the mirror is gone for good (and its GB)
        r = llem_images("load", "-i", str(bundle))
        assert r.returncode == 0, r.stderr
        bundle.unlink()  # ~1.7 GB that later tests on a small disk need
        run = llem("run", "--preset", "quick-test", "--runtime", "docker", "--registry", mirror,
                   "--results-dir", str(tmp_path / "res"))
        assert run.returncode == 0, run.stdout + run.stderr
        env = load_result(tmp_path / "res")["environment"]
        assert env["image_ref"] == mirrored
        assert env["image_digest"] == original.id  # no registry digest after load: the id
    finally:
        if reg_proc.poll() is None:
            reg_proc.kill()
            reg_proc.wait(timeout=30)
        shutil.rmtree(tmp_path / "reg-data", ignore_errors=True)
        (tmp_path / "bundle.tar").unlink(missing_ok=True)
        img = client.images.get(mirrored) if mirrored else None
        for t in tags:
            img.tag(t)
        if mirrored not in tags:
            client.images.remove(mirrored)
        # restore the registry digest for later tests
        client.images.pull(it_env["LLEM_IT_IMAGE"])


def test_save_to_a_small_disk_is_refused_before_streaming(tmp_path, it_env, client):
    """A real 64 MB filesystem and the real 1.7 GB image: exit 2, one line, nothing written
    (the daemon's size of the image, read before the first byte)."""
    disk = tmp_path / "small"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        r = llem_images("save", "-o", str(disk / "b.tar"), "--registry",
                        it_env["LLEM_IT_OPEN_REGISTRY"])
        assert r.returncode == 2, r.stdout + r.stderr
        line = one_line(r)
        assert "free in" in line and "choose another -o" in line
        size = client.images.get(it_env["LLEM_IT_IMAGE"]).attrs["Size"]
        assert f"at least {(size + HEADROOM) / 1e9:.1f} GB" in line, line
        assert not list(disk.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_doctor_on_a_cpu_host(it_env):
    code = ("import typer, sys; from llem.cli.doctor import doctor; "
            "typer.run(doctor)")
    r = subprocess.run(["python3" if False else __import__("sys").executable, "-c", code,
                        "--registry", it_env["LLEM_IT_OPEN_REGISTRY"]],
                       capture_output=True, text=True, env=base_env())
    assert "Docker daemon: reachable" in r.stdout, r.stdout + r.stderr
    assert "Chosen image" in r.stdout and "-cpu" in r.stdout
    assert "Registry" in r.stdout and "reachable and authorised" in r.stdout
    assert r.returncode == 0, r.stdout


def test_doctor_flags_unauthenticated_registry(it_env, docker_config):
    code = "import typer; from llem.cli.doctor import doctor; typer.run(doctor)"
    r = subprocess.run([__import__("sys").executable, "-c", code, "--registry",
                        it_env["LLEM_IT_AUTH_REGISTRY"]], capture_output=True, text=True,
                       env=base_env(DOCKER_CONFIG=str(docker_config)))
    assert r.returncode == 1
    assert f"fix: `docker login {it_env['LLEM_IT_AUTH_REGISTRY']}`" in r.stdout, r.stdout
    assert os.environ.get("LLEM_IT_REGISTRY_PASSWORD", "\0") not in r.stdout
    assert STATE.is_dir()
