"""Image choice by the driver's CUDA major.minor, for the drivers of the last years (issue 14).

The driver reports the newest CUDA it supports (NVIDIA's table, what ``nvidia-smi`` prints
beside the driver version); the launcher takes the newest image whose CUDA does not exceed
it, comparing the minor too: a 12.8 image on a 12.4 driver fails at the first kernel launch.
The driver is faked where the launcher reads it (``nvidia-smi``'s header, NVML's integer),
and the image list is the real ``images/matrix.yaml``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from llem.images import cuda as images_cuda
from llem.images.base import ImageError
from llem.images.cuda import DriverCuda, choose_variant, detect_driver_cuda
from llem.images.matrix import load_matrix
from llem.images.resolve import resolve_image

#: NVIDIA's table: driver branch -> the CUDA version it supports
DRIVER_CUDA = {470: "11.4", 510: "11.6", 525: "12.0", 535: "12.2", 545: "12.3",
               550: "12.4", 560: "12.6", 570: "12.8", 575: "12.9", 580: "13.0"}

#: what the pytorch images of images/matrix.yaml (CUDA 11.8, 12.8, 13.0, and cpu) give each
#: driver: None = no image fits (the one-line error names the driver and the images)
PYTORCH = {470: None, 510: None, 525: "11", 535: "11", 545: "11", 550: "11", 560: "11",
           570: "12", 575: "12", 580: "13"}

#: a matrix whose images sit at other minors, so every boundary is crossed both ways
OTHER_IMAGES = ["11.4", "12.2", "12.9", "13.0"]
OTHER = {470: "11", 510: "11", 525: "11", 535: "12", 545: "12", 550: "12", 560: "12",
         570: "12", 575: "12", 580: "13"}


def _fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: int) -> None:
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir(exist_ok=True)
    line = (f"| NVIDIA-SMI {driver}.54.15   Driver Version: {driver}.54.15   "
            f"CUDA Version: {DRIVER_CUDA[driver]}     |")
    smi.write_text(f"#!/bin/sh\necho '{line}'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(smi.parent))
    monkeypatch.setattr(images_cuda, "_cuda_from_nvml", lambda: None)  # NVML: no driver


@pytest.mark.parametrize("driver", sorted(DRIVER_CUDA))
def test_pytorch_image_for_each_driver_from_nvidia_smi(
        driver: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path, monkeypatch, driver)
    found = detect_driver_cuda()
    assert (str(found), found.source) == (DRIVER_CUDA[driver], "nvidia-smi")
    expected = PYTORCH[driver]
    if expected is None:
        with pytest.raises(ImageError) as exc:
            resolve_image("pytorch", registry="r.example")
        msg = str(exc.value)
        assert "\n" not in msg and f"CUDA {DRIVER_CUDA[driver]} (from nvidia-smi)" in msg
        assert "11.8, 12.8, 13.0" in msg and "update the driver or pass --image" in msg
        return
    res = resolve_image("pytorch", registry="r.example")
    assert (res.variant, res.ref.rsplit("-", 1)[1]) == (expected, f"cuda{expected}")


@pytest.mark.parametrize("driver", sorted(DRIVER_CUDA))
def test_same_choice_from_nvml(driver: int, monkeypatch: pytest.MonkeyPatch) -> None:
    major, minor = map(int, DRIVER_CUDA[driver].split("."))
    nvml = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlSystemGetCudaDriverVersion=lambda: major * 1000 + minor * 10)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    found = detect_driver_cuda()
    assert found == DriverCuda(major, minor, "nvml")
    pytorch = [e.cuda_choice for e in load_matrix().for_backend("pytorch")]
    if PYTORCH[driver] is None:
        with pytest.raises(ImageError):
            choose_variant(found, pytorch)
    else:
        assert choose_variant(found, pytorch) == PYTORCH[driver]


@pytest.mark.parametrize("driver", sorted(DRIVER_CUDA))
def test_other_minors(driver: int) -> None:
    found = images_cuda.parse_cuda(DRIVER_CUDA[driver], "nvml")
    assert choose_variant(found, [*OTHER_IMAGES, "cpu"]) == OTHER[driver]


def test_a_major_without_a_known_minor_counts_as_its_dot_zero() -> None:
    assert choose_variant(DriverCuda(12, 0, "nvml"), ["11.8", "12"]) == "12"
    assert choose_variant(DriverCuda(11, 9, "nvml"), ["11.8", "12"]) == "11"


def test_matrix_minors_are_the_base_images_cuda() -> None:
    """cuda_version is what the base image's tag says, where the tag says it."""
    import re

    for e in load_matrix().images:
        m = re.search(r"cuda(\d+\.\d+)", e.base_image)
        if m:
            assert e.cuda_version == m.group(1), e
        if e.cuda_version:
            assert e.cuda_version.split(".")[0] == e.cuda
