"""Image resolution: CUDA variant choice, references, registry precedence, lock files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llem.images import cuda as images_cuda
from llem.images import matrix as images_matrix
from llem.images import refs as images_refs
from llem.images import registry as images_registry
from llem.images import resolve as images_resolve
from llem.images.base import ImageError
from llem.images.cuda import DriverCuda, choose_variant, parse_cuda
from llem.images.lock import LockEntry, LockFile
from llem.images.matrix import load_matrix
from llem.images.refs import image_ref, split_ref
from llem.images.resolve import resolve_image
from llem_schema.errors import ConfigError

REPO = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    ("driver", "available", "expected"),
    [
        ("11.8", ["11", "12", "13"], "11"),
        ("12.4", ["11", "12", "13"], "12"),
        ("13.0", ["11", "12", "13"], "13"),
        ("11.8", ["12", "13"], None),
        ("12.4", ["12", "13"], "12"),
        ("13.0", ["12", "13"], "13"),
        ("11.8", ["11"], "11"),
        ("12.4", ["11"], "11"),
        ("13.0", ["11", "12"], "12"),
        ("13.0", ["12", "cpu"], "12"),
        ("12.4", ["13"], None),
    ],
)
def test_newest_major_not_above_driver(driver, available, expected):
    d = parse_cuda(driver, "nvml")
    if expected is None:
        with pytest.raises(ImageError) as exc:
            choose_variant(d, available, "pytorch")
        msg = str(exc.value)
        assert driver in msg and "\n" not in msg
        assert ", ".join(sorted(a for a in available if a.isdigit())) in msg
    else:
        assert choose_variant(d, available) == expected


def test_no_driver_picks_cpu_variant_or_says_why():
    assert choose_variant(None, ["12", "cpu"]) == "cpu"
    with pytest.raises(ImageError, match="no NVIDIA driver"):
        choose_variant(None, ["12", "13"], "vllm")


def test_parse_cuda():
    assert parse_cuda("12") == DriverCuda(12, 0, "--cuda")
    assert parse_cuda("12.4").minor == 4
    assert parse_cuda("cpu") is None
    with pytest.raises(ConfigError, match="--cuda"):
        parse_cuda("twelve")


def test_detection_order_nvml_then_smi(monkeypatch):
    monkeypatch.setattr(images_cuda, "_cuda_from_nvml", lambda: DriverCuda(13, 0, "nvml"))
    monkeypatch.setattr(images_cuda, "_cuda_from_nvidia_smi",
                        lambda: DriverCuda(12, 4, "nvidia-smi"))
    assert images_cuda.detect_driver_cuda().source == "nvml"
    monkeypatch.setattr(images_cuda, "_cuda_from_nvml", lambda: None)
    assert images_cuda.detect_driver_cuda().source == "nvidia-smi"
    assert images_cuda.detect_driver_cuda("11.8") == DriverCuda(11, 8, "--cuda")


def test_nvidia_smi_parsing(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    line = "| NVIDIA-SMI 550.54  Driver Version: 550.54  CUDA Version: 12.4 |"
    smi.write_text(f"#!/bin/sh\necho '{line}'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}")
    assert images_cuda._cuda_from_nvidia_smi() == DriverCuda(12, 4, "nvidia-smi")


def test_matrix_is_the_repository_file_and_valid():
    shipped = images_matrix.matrix_path()
    assert shipped.resolve() == (REPO / "images" / "matrix.yaml").resolve()
    m = load_matrix()
    assert {e.backend for e in m.images} == {"pytorch", "vllm", "tensorrt"}
    assert m.entry("pytorch", "cpu") is not None
    for e in m.images:
        assert (REPO / "images" / f"{e.backend}.Dockerfile").is_file()


def test_dockerfiles_follow_the_contract():
    for b in ("pytorch", "vllm", "tensorrt"):
        text = (REPO / "images" / f"{b}.Dockerfile").read_text()
        assert "ARG BASE_IMAGE=" in text
        assert "--no-index --find-links" in text
        assert f'"llenergymeasure[{b}]"' in text
        assert 'ENTRYPOINT ["python", "-m", "llem_harness"]' in text
        assert "USER 1000" in text
        for label in ("version", "source", "revision"):
            assert f"org.opencontainers.image.{label}=" in text
        assert "io.llenergymeasure.backend" in text and "io.llenergymeasure.cuda" in text


def test_reference_and_registry_precedence(monkeypatch, tmp_path):
    monkeypatch.setattr(images_refs, "user_config_path", lambda: tmp_path / "config.yaml")
    monkeypatch.delenv("LLEM_REGISTRY", raising=False)
    monkeypatch.setattr(images_resolve, "detect_driver_cuda",  # CUDA 12.8 gets the 12.8 image
                        lambda override=None: DriverCuda(12, 8, "t"))
    v = images_matrix.llem_version()
    # nothing set: the matrix's registry, where the release workflow pushes
    assert resolve_image("pytorch").ref == \
        f"{load_matrix().registry}/llenergymeasure/pytorch:{v}-cuda12"
    (tmp_path / "config.yaml").write_text("registry: cfg.example:5000\n")
    assert resolve_image("pytorch").ref.startswith("cfg.example:5000/llenergymeasure/")
    monkeypatch.setenv("LLEM_REGISTRY", "env.example/")
    assert resolve_image("pytorch").ref.startswith("env.example/llenergymeasure/")
    assert resolve_image("pytorch", registry="cli.example").ref.startswith("cli.example/")
    explicit = "x/y@sha256:" + "a" * 64
    r = resolve_image("pytorch", image=explicit, registry="cli.example")
    assert (r.ref, r.source) == (explicit, "explicit")


def test_cpu_host_resolves_cpu_tag(monkeypatch):
    monkeypatch.setattr(images_resolve, "detect_driver_cuda",
                        lambda override=None: None)
    r = resolve_image("pytorch", registry="127.0.0.1:5000")
    assert r.ref.endswith("-cpu") and r.variant == "cpu"


def test_split_ref():
    assert split_ref("127.0.0.1:5000/a/b:1-cpu") == ("127.0.0.1:5000/a/b", "1-cpu", None)
    assert split_ref("a/b@sha256:x") == ("a/b", None, "sha256:x")
    assert split_ref("r:1/a:t@sha256:x") == ("r:1/a", "t", "sha256:x")
    assert image_ref("vllm", "12", None, "1.2.3") == "llenergymeasure/vllm:1.2.3-cuda12"


def test_lock_roundtrip_and_backend_missing(tmp_path):
    entry = LockEntry(ref="r/a:1", digest="sha256:d", image_id="sha256:i")
    lf = LockFile(images={"pytorch": entry})
    lf.write(tmp_path / "llem.lock")
    back = LockFile.read(tmp_path / "llem.lock")
    assert back == lf
    assert resolve_image("pytorch", lock=back).locked.digest == "sha256:d"
    with pytest.raises(ImageError, match="pins no image for backend 'vllm'"):
        resolve_image("vllm", lock=back)
    (tmp_path / "bad.lock").write_text("images: {pytorch: {ref: 1}}\n")
    with pytest.raises(ConfigError, match=r"bad\.lock"):
        LockFile.read(tmp_path / "bad.lock")


def test_study_backends(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"base": {"backend": "pytorch"},
                                 "sweep": {"backend": ["vllm", "pytorch"]}}))
    assert images_registry.study_backends(p) == ["vllm", "pytorch"]
    p.write_text("backend: tensorrt\n")
    assert images_registry.study_backends(p) == ["tensorrt"]
    p.write_text("backend: tensort\n")
    with pytest.raises(ConfigError, match="backend"):
        images_registry.study_backends(p)


def test_importing_images_and_docker_runtime_loads_no_gpu_libs():
    code = ("import sys, llem.images, llem.runtimes.docker, llem.cli.images, "
            "llem.cli.doctor; "
            "bad=[m for m in ('torch','transformers','pynvml') if m in sys.modules]; "
            "assert not bad, bad")
    env_pp = ":".join(str(REPO / p) for p in ("launcher", "entrypoints", "schemas"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": env_pp, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
