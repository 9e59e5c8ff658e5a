"""Which container image runs an experiment, and making sure it is here.

Images are ``<registry>/<namespace>/<backend>:<llem version>-cuda<major>`` (``-cpu`` for the
CPU variant), one per row of ``images/matrix.yaml``. The host picks the newest CUDA major its
driver supports, because a CUDA runtime newer than the driver fails at the first kernel launch
with an error that names neither. An explicit ``--image`` wins; a lock file (``llem.lock``)
pins each backend to a digest so a study re-runs on exactly the same bytes.

Nothing here imports pynvml or torch at import time (the host install has neither); NVML is
imported inside :func:`detect_driver_cuda` only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llem_schema.atomic import atomic_write_text
from llem_schema.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import docker
    from rich.console import Console

PullPolicy = Literal["missing", "always", "never"]
PULL_POLICIES: tuple[str, ...] = ("missing", "always", "never")
LOCK_FILE = "llem.lock"
CPU = "cpu"


class ImageError(RuntimeError):
    """An image could not be chosen, found or fetched; the message is one line with the fix."""


# --------------------------------------------------------------------------------------
# the matrix


class MatrixEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    cuda: str = Field(description="CUDA major ('12') or 'cpu'.")
    base_image: str
    pip_args: tuple[str, ...] = ()

    @property
    def tag_suffix(self) -> str:
        return CPU if self.cuda == CPU else f"cuda{self.cuda}"


class Matrix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str = "llenergymeasure"
    #: engine -> the one version its image, extra pin and mapping tests follow
    engines: dict[str, str] = {}
    images: list[MatrixEntry]

    def for_backend(self, backend: str) -> list[MatrixEntry]:
        return [e for e in self.images if e.backend == backend]

    def entry(self, backend: str, cuda: str) -> MatrixEntry | None:
        return next((e for e in self.for_backend(backend) if e.cuda == cuda), None)


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


def choose_variant(
    driver: DriverCuda | None, available: Iterable[str], backend: str = "pytorch"
) -> str:
    """Tag variant to use: the newest CUDA major <= the driver's, or 'cpu' without a driver."""
    available = list(available)
    majors = sorted({int(a) for a in available if a.isdigit()})
    listed = ", ".join(str(m) for m in majors) or "none"
    if driver is None:
        if CPU in available:
            return CPU
        raise ImageError(
            f"no NVIDIA driver found and backend '{backend}' has no CPU image "
            f"(CUDA majors: {listed}); pass --cuda MAJOR or --image REF, or use --runtime local"
        )
    fitting = [m for m in majors if m <= driver.major]
    if not fitting:
        raise ImageError(
            f"the NVIDIA driver supports CUDA {driver} (from {driver.source}) but '{backend}' "
            f"images exist only for CUDA majors {listed}: update the driver or pass --image REF"
        )
    return str(fitting[-1])


# --------------------------------------------------------------------------------------
# registry and references


def user_config_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("llem")) / "config.yaml"


def user_config() -> dict[str, Any]:
    path = user_config_path()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping like 'registry: ghcr.io/myorg'")
    return data


def resolve_registry(cli: str | None = None) -> str | None:
    """Registry prefix: --registry, else $LLEM_REGISTRY, else ``registry:`` in the user config."""
    value = cli or os.environ.get("LLEM_REGISTRY") or user_config().get("registry")
    return str(value).rstrip("/") if value else None


def image_ref(backend: str, variant: str, registry: str | None = None,
              version: str | None = None, namespace: str = "llenergymeasure") -> str:
    suffix = CPU if variant == CPU else f"cuda{variant}"
    repo = f"{namespace}/{backend}"
    if registry:
        repo = f"{registry}/{repo}"
    return f"{repo}:{version or llem_version()}-{suffix}"


def split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """'reg:5000/a/b:tag@sha256:x' -> ('reg:5000/a/b', 'tag', 'sha256:x')."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
    return ref, tag, digest


# --------------------------------------------------------------------------------------
# lock file


class LockEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="The reference that was resolved (tag form).")
    digest: str | None = Field(
        None, description="Registry manifest digest (sha256:...), what `docker pull` verifies."
    )
    image_id: str = Field(description="Image config digest: survives `docker save`/`load`.")


class LockFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lock_version: int = 1
    images: dict[str, LockEntry] = Field(default_factory=dict)

    def write(self, path: Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.model_dump(mode="json"), sort_keys=True))

    @classmethod
    def read(cls, path: Path) -> LockFile:
        try:
            return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read lock file ({exc.strerror})") from exc
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{path}: not a valid llem.lock: {str(exc).splitlines()[0]}") from exc


# --------------------------------------------------------------------------------------
# resolution


@dataclass
class ResolvedImage:
    backend: str
    ref: str
    source: Literal["explicit", "lock", "resolved"]
    variant: str | None = None  # '12', 'cpu'; None when --image/lock said it
    driver: DriverCuda | None = None
    locked: LockEntry | None = None
    notes: list[str] = field(default_factory=list)


def resolve_image(
    backend: str,
    image: str | None = None,
    registry: str | None = None,
    cuda: str | None = None,
    lock: LockFile | None = None,
    matrix: Matrix | None = None,
) -> ResolvedImage:
    """Pick the reference to run, without touching Docker. See the module docstring."""
    driver = detect_driver_cuda(cuda)
    if lock is not None:
        entry = lock.images.get(backend)
        if entry is None:
            raise ImageError(
                f"the lock file pins no image for backend '{backend}' "
                f"(it has: {', '.join(sorted(lock.images)) or 'none'}); re-run `llem images lock`"
            )
        if image and image not in (entry.ref, f"{split_ref(entry.ref)[0]}@{entry.digest}"):
            raise ImageError(
                f"--image {image} differs from the lock file's {entry.ref}; drop one of them"
            )
        return ResolvedImage(backend, entry.ref, "lock", driver=driver, locked=entry)
    if image:
        return ResolvedImage(backend, image, "explicit", driver=driver)
    matrix = matrix or load_matrix()
    entries = matrix.for_backend(backend)
    if not entries:
        raise ImageError(f"images/matrix.yaml lists no image for backend '{backend}'")
    variant = choose_variant(driver, [e.cuda for e in entries], backend)
    ref = image_ref(backend, variant, resolve_registry(registry), namespace=matrix.namespace)
    return ResolvedImage(backend, ref, "resolved", variant=variant, driver=driver)


# --------------------------------------------------------------------------------------
# docker side: presence, pull with progress, digests


def docker_client(timeout: int = 60) -> docker.DockerClient:
    """A client for $DOCKER_HOST / the default socket, or ImageError with the fix."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except DockerException as exc:
        raise ImageError(daemon_hint(exc)) from exc
    except Exception as exc:  # requests' ConnectionError, socket errors
        raise ImageError(daemon_hint(exc)) from exc


def daemon_hint(exc: BaseException | None = None) -> str:
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return (
        f"cannot reach the Docker daemon at {where}: start it (e.g. `sudo systemctl start "
        f"docker`), check DOCKER_HOST and your access to the socket, or use --runtime local"
    )


def repo_digest(attrs: dict[str, Any], repo: str) -> str | None:
    """The manifest digest of ``repo`` from an image's RepoDigests (None if never pulled/pushed)."""
    for rd in attrs.get("RepoDigests") or []:
        r, _, d = rd.partition("@")
        if r == repo or r == f"docker.io/{repo}" or f"docker.io/{r}" == repo:
            return d
    return None


def local_image(client: docker.DockerClient, ref: str) -> Any | None:
    from docker.errors import ImageNotFound

    try:
        return client.images.get(ref)
    except ImageNotFound:
        return None


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


AUTH_ERROR_WORDS = ("unauthorized", "authentication required", "no basic auth", "denied",
                    "incorrect username or password")


def is_auth_error(message: str) -> bool:
    return any(w in message.lower() for w in AUTH_ERROR_WORDS)


def registry_host(ref: str) -> str:
    """'reg:5000/a/b:t' -> 'reg:5000'; 'llenergymeasure/x:t' -> 'docker.io'."""
    first = split_ref(ref)[0].split("/", 1)
    if len(first) == 2 and ("." in first[0] or ":" in first[0] or first[0] == "localhost"):
        return first[0]
    return "docker.io"


def pull_error_hint(ref: str, message: str) -> str:
    registry = registry_host(ref)
    low = message.lower()
    if is_auth_error(message):
        return (f"pull {ref}: the registry refused the credentials: run "
                f"`docker login {registry}` (llem uses Docker's stored credentials)")
    if "manifest unknown" in low or "not found" in low:
        return f"pull {ref}: no such image in the registry (check the tag, --registry or --image)"
    if any(w in low for w in ("connection refused", "no such host", "timeout", "dial tcp")):
        return (f"pull {ref}: registry {registry} is unreachable; with no network use "
                f"`llem images load -i bundle.tar` or --registry pointing at a mirror")
    return f"pull {ref}: {_one_line(message)}"


def pull_image(client: docker.DockerClient, ref: str, console: Console | None = None,
               show_progress: bool = True) -> Any:
    """Pull with one progress bar per layer, from the daemon's streamed JSON events.

    Credentials come from Docker's config/credential helpers (the SDK resolves them per
    registry); nothing here reads or prints them.
    """
    from docker.errors import APIError
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    repo, tag, digest = split_ref(ref)
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
        console=console, transient=True, disable=not show_progress,
    )
    tasks: dict[str, Any] = {}
    try:
        with progress:
            stream = client.api.pull(repo, tag=digest or tag or "latest", stream=True, decode=True)
            for ev in stream:
                if "error" in ev:
                    raise ImageError(pull_error_hint(ref, ev.get("error", "")))
                layer, status = ev.get("id"), ev.get("status", "")
                if not layer or layer == (tag or "latest") or ":" in layer:
                    continue
                detail = ev.get("progressDetail") or {}
                if layer not in tasks:
                    tasks[layer] = progress.add_task(f"{layer} {status}", total=None)
                task = tasks[layer]
                if detail.get("total"):
                    progress.update(task, total=detail["total"], completed=detail.get("current", 0),
                                    description=f"{layer} {status}")
                elif status in ("Pull complete", "Already exists", "Download complete"):
                    t = progress.tasks[tasks[layer]].total or 1
                    progress.update(task, total=t, completed=t, description=f"{layer} {status}")
                else:
                    progress.update(task, description=f"{layer} {status}")
    except APIError as exc:
        raise ImageError(pull_error_hint(ref, str(exc.explanation or exc))) from exc
    except ImageError:
        raise
    except Exception as exc:  # connection dropped mid-stream
        raise ImageError(pull_error_hint(ref, str(exc))) from exc
    img = local_image(client, ref)
    if img is None:
        raise ImageError(f"pull {ref}: the daemon reported success but the image is not there")
    return img


@dataclass
class EnsuredImage:
    ref: str  # human reference (tag form, or repo@digest)
    run_ref: str  # what to hand to `containers.run`: the exact image id
    digest: str | None  # registry manifest digest if known
    image_id: str


def ensure_image(client: docker.DockerClient, resolved: ResolvedImage,
                 pull_policy: str = "missing", console: Console | None = None,
                 show_progress: bool = True) -> EnsuredImage:
    """Make the resolved image present locally, honouring the pull policy and any lock."""
    if pull_policy not in PULL_POLICIES:
        raise ConfigError(
            f"--pull: expected one of {', '.join(PULL_POLICIES)} (got {pull_policy!r})"
        )
    if resolved.locked is not None:
        return _ensure_locked(client, resolved, pull_policy, console, show_progress)
    ref = resolved.ref
    img = None if pull_policy == "always" else local_image(client, ref)
    if img is None:
        if pull_policy == "never":
            raise ImageError(
                f"image {ref} is not present and --pull never was given: pull it "
                f"(`llem images pull`), load a bundle (`llem images load`) or drop --pull never"
            )
        img = pull_image(client, ref, console, show_progress)
    repo, _, digest = split_ref(ref)
    return EnsuredImage(ref, img.id, digest or repo_digest(img.attrs, repo), img.id)


def _ensure_locked(client: docker.DockerClient, resolved: ResolvedImage, pull_policy: str,
                   console: Console | None, show_progress: bool) -> EnsuredImage:
    """Only the pinned bytes run: found by manifest digest, or by the pinned image id."""
    entry = resolved.locked
    assert entry is not None
    repo = split_ref(entry.ref)[0]
    pinned = f"{repo}@{entry.digest}" if entry.digest else None
    img = None
    if pinned:
        img = local_image(client, pinned)
    if img is None:
        # After `docker load` RepoDigests are gone but the image id (config digest) is kept.
        cand = local_image(client, entry.ref)
        if cand is not None and cand.id == entry.image_id:
            img = cand
        elif cand is not None and pull_policy == "never":
            raise ImageError(_mismatch(entry, cand.id))
    if img is None and pinned and pull_policy != "never":
        img = pull_image(client, pinned, console, show_progress)
    if img is None:
        raise ImageError(
            f"pinned image {pinned or entry.ref} ({entry.image_id[:19]}) is not present and "
            f"cannot be pulled: load the bundle (`llem images load`) or allow pulling"
        )
    if img.id != entry.image_id:
        raise ImageError(_mismatch(entry, img.id))
    return EnsuredImage(entry.ref, img.id, entry.digest, img.id)


def _mismatch(entry: LockEntry, found: str) -> str:
    return (
        f"image {entry.ref} is {found[:19]} here but llem.lock pins {entry.image_id[:19]} "
        f"(digest {entry.digest or 'n/a'}): refused; restore the pinned image or re-lock"
    )


def lock_entry(client: docker.DockerClient, ensured: EnsuredImage) -> LockEntry:
    return LockEntry(ref=ensured.ref, digest=ensured.digest, image_id=ensured.image_id)


def study_backends(path: Path) -> list[str]:
    """Backends a study (or single experiment) YAML uses, sweep included, in first-use order."""
    from llem_schema.config import ExperimentConfig
    from llem_schema.errors import format_validation_error
    from llem_schema.study import StudyConfig, expand_experiments

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        if {"base", "sweep", "study"} & set(data):
            exps = expand_experiments(StudyConfig.model_validate(data))
        else:
            exps = [ExperimentConfig.model_validate(data)]
    except ValidationError as exc:
        model = StudyConfig if {"base", "sweep", "study"} & set(data) else ExperimentConfig
        raise ConfigError(format_validation_error(exc, model, str(path))) from exc
    seen: list[str] = []
    for e in exps:
        if e.backend not in seen:
            seen.append(e.backend)
    return seen
