"""The host driver's CUDA version and the image variant it can run."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llem.images.base import CPU, ImageError
from llem_schema.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    pass


# --------------------------------------------------------------------------------------
# host CUDA


@dataclass(frozen=True)
class DriverCuda:
    """The newest CUDA version the host's NVIDIA driver supports, and where we read it."""

    major: int
    minor: int
    source: str  # "nvml", "nvidia-smi", "--cuda"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def parse_cuda(text: str, source: str = "--cuda") -> DriverCuda | None:
    """'12', '12.4' -> DriverCuda; 'cpu' -> None. Raises ConfigError on anything else."""
    text = str(text).strip().lower()
    if text in (CPU, "none"):
        return None
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", text)
    if not m:
        raise ConfigError(f"--cuda: expected a CUDA version like 12.4 or 'cpu' (got {text!r})")
    return DriverCuda(int(m.group(1)), int(m.group(2) or 0), source)


def _cuda_from_nvml() -> DriverCuda | None:
    try:
        import pynvml  # lazy: host installs may lack nvidia-ml-py, and it must not load at import
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            v = int(pynvml.nvmlSystemGetCudaDriverVersion())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no usable driver
        return None
    return DriverCuda(v // 1000, (v % 1000) // 10, "nvml")


def _cuda_from_nvidia_smi() -> DriverCuda | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=15).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out)
    return DriverCuda(int(m.group(1)), int(m.group(2)), "nvidia-smi") if m else None


def detect_driver_cuda(override: str | None = None) -> DriverCuda | None:
    """NVML first, then ``nvidia-smi``, then ``--cuda``/config. None = no NVIDIA driver."""
    if override:
        return parse_cuda(override)
    return _cuda_from_nvml() or _cuda_from_nvidia_smi()


def image_cuda(variant: str) -> tuple[int, int] | None:
    """'12.8' -> (12, 8); '12' -> (12, 0) (an image whose minor the matrix does not say is
    taken as X.0: only its major is compared); 'cpu' -> None."""
    if variant == CPU:
        return None
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", str(variant).strip())
    if not m:
        raise ImageError(f"image CUDA version {variant!r}: expected MAJOR or MAJOR.MINOR or 'cpu'")
    return int(m.group(1)), int(m.group(2) or 0)


def choose_variant(
    driver: DriverCuda | None, available: Iterable[str], backend: str = "pytorch"
) -> str:
    """Tag variant to use: the CUDA major of the newest image whose CUDA (major.minor, as
    listed in ``available``: '12.8', or '12' when the minor is not known) does not exceed
    the driver's, or 'cpu' without a driver. A driver at CUDA 12.6 does not get a 12.8
    image: the design's rule that within a major the image's minor must not exceed the
    driver's, so a kernel built for a newer runtime never meets an older driver."""
    available = list(available)
    versions = sorted((v, a) for a in available if (v := image_cuda(a)) is not None)
    listed = ", ".join(a for _, a in versions) or "none"
    if driver is None:
        if CPU in available:
            return CPU
        raise ImageError(
            f"no NVIDIA driver found and backend '{backend}' has no CPU image "
            f"(CUDA: {listed}); pass --cuda MAJOR or --image REF, or use --runtime local"
        )
    fitting = [v for v, _ in versions if v <= (driver.major, driver.minor)]
    if not fitting:
        raise ImageError(
            f"the NVIDIA driver supports CUDA {driver} (from {driver.source}) but '{backend}' "
            f"images need CUDA {listed}: update the driver or pass --image REF"
        )
    return str(fitting[-1][0])
