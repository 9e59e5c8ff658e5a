"""The Docker side: presence, pull with progress, digests, ensuring an image."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from llem.images.base import PULL_POLICIES, ImageError
from llem.images.lock import LockEntry
from llem.images.refs import pull_auth, split_ref
from llem.images.resolve import ResolvedImage
from llem_schema.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import docker
    from rich.console import Console


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


def _os_errno(exc: BaseException | None) -> int | None:
    """The errno of the first OSError in an exception's chain (the docker SDK wraps it in
    requests' and urllib3's errors, as a cause or as an argument)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno:
            return e.errno
        todo += [e.__cause__, e.__context__, *e.args]
    return None


def daemon_problem(exc: BaseException | None = None) -> tuple[str, str, str]:
    """(where, what is wrong, the fix) for a Docker daemon that did not answer: not
    running, no permission on its socket, or something else on the way."""
    import errno

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    code = _os_errno(exc)
    text = str(exc or "").lower()
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in text:
        return (where, "permission denied on its socket",
                "add yourself to the docker group (`sudo usermod -aG docker $USER`, then log "
                "in again), use rootless Docker, or --runtime podman/local")
    start = "start it (`sudo systemctl start docker`), check DOCKER_HOST, or use --runtime local"
    if code == errno.ENOENT or "no such file" in text:
        return where, "not running (no socket there)", start
    if code == errno.ECONNREFUSED or "connection refused" in text:
        return where, "not running (nothing listens there)", start
    cause = " ".join(str(exc).split())[:160] if exc is not None else "no answer"
    return where, f"no answer ({cause})", start


def daemon_hint(exc: BaseException | None = None) -> str:
    """One line for a daemon that did not answer, starting 'cannot reach the Docker daemon'."""
    where, what, fix = daemon_problem(exc)
    return f"cannot reach the Docker daemon at {where}: {what}; {fix}"


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
            stream = client.api.pull(repo, tag=digest or tag or "latest", stream=True,
                                     decode=True, auth_config=pull_auth())
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
            raise ImageError(lock_mismatch(entry, cand.id))
    if img is None and pinned and pull_policy != "never":
        img = pull_image(client, pinned, console, show_progress)
    if img is None:
        raise ImageError(
            f"pinned image {pinned or entry.ref} ({entry.image_id[:19]}) is not present and "
            f"cannot be pulled: load the bundle (`llem images load`) or allow pulling"
        )
    if img.id != entry.image_id:
        raise ImageError(lock_mismatch(entry, img.id))
    return EnsuredImage(entry.ref, img.id, entry.digest, img.id)


def lock_mismatch(entry: LockEntry, found: str) -> str:
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
