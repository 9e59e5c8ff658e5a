"""The image matrix (images/matrix.yaml): backend x CUDA major -> base image, engine versions."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llem.images.base import CPU
from llem_schema.errors import ConfigError

# --------------------------------------------------------------------------------------
# the matrix


class MatrixEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    cuda: str = Field(description="CUDA major ('12') or 'cpu'.")
    cuda_version: str | None = Field(
        None, pattern=r"^\d+\.\d+$",
        description="The base image's CUDA major.minor ('12.8'): a driver whose CUDA is older "
                    "does not get this image. Unset: only the major is compared.")
    base_image: str
    engine_version: str | None = Field(
        None, description="The engine version in this image when the matrix's `engines:` "
                          "table has none for the backend (torch's version for pytorch).")
    pip_args: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _major_agrees(self) -> MatrixEntry:
        if self.cuda_version and self.cuda_version.split(".")[0] != self.cuda:
            raise ValueError(f"{self.backend}: cuda_version {self.cuda_version} is not in "
                             f"CUDA major {self.cuda}")
        return self

    @property
    def cuda_choice(self) -> str:
        """What :func:`llem.images.cuda.choose_variant` compares: '12.8', '12' or 'cpu'."""
        return self.cuda_version or self.cuda

    @property
    def tag_suffix(self) -> str:
        return CPU if self.cuda == CPU else f"cuda{self.cuda}"


class Matrix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: where CI pushes and the launcher pulls by default (host plus owner path, e.g.
    #: ``ghcr.io/llenergymeasure``); the one place both read, so they cannot drift
    registry: str = Field(pattern=r"^[^\s@/]+(/[^\s@/]+)*$")
    namespace: str = "llenergymeasure"
    #: engine -> the one version its image, extra pin and mapping tests follow
    engines: dict[str, str] = {}
    images: list[MatrixEntry]

    def for_backend(self, backend: str) -> list[MatrixEntry]:
        return [e for e in self.images if e.backend == backend]

    def entry(self, backend: str, cuda: str) -> MatrixEntry | None:
        return next((e for e in self.for_backend(backend) if e.cuda == cuda), None)

    def engine_version(self, entry: MatrixEntry) -> str:
        """The engine version an image of ``entry`` carries (its ENGINE_VERSION label)."""
        return entry.engine_version or self.engines.get(entry.backend) or "unknown"


def matrix_path() -> Path:
    """``images/matrix.yaml`` of a checkout, else the copy shipped in the package.

    ``llem/data/image-matrix.yaml`` is a symlink to ``images/matrix.yaml`` in the repository,
    and a plain file in a wheel, so there is one list to edit.
    """
    env = os.environ.get("LLEM_IMAGE_MATRIX")
    if env:
        return Path(env)
    return Path(str(resources.files("llem") / "data" / "image-matrix.yaml"))


def load_matrix(path: Path | None = None) -> Matrix:
    path = path or matrix_path()
    try:
        data = yaml.safe_load(path.read_text())
        return Matrix.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not a valid image matrix: {first}") from exc


def llem_version() -> str:
    """The version in image tags: the installed distribution's, i.e. what the wheel says."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llenergymeasure")
    except PackageNotFoundError:  # running from a source tree that is not installed
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
        return m.group(1) if m else "0.0.0"
