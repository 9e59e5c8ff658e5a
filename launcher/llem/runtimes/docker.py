"""Docker runtime: one container per run, through the Docker SDK (no shelling out).

The container gets exactly what the host decided: the run directory at ``/llem/run`` (read
and write), the HF cache and local model paths read-only, the experiment's GPUs through a
``DeviceRequest``, the image reference + digest in its environment so the harness can record
them in ``result.json``, and the experiment's ``runtime.shm_size``. It is hardened the same
way every time (:mod:`llem.runtimes.containers`): no capabilities, ``no-new-privileges``,
a non-root uid:gid even when llem runs as root, labels naming its run, and the HF token as a
read-only 0600 file named by ``HF_TOKEN_PATH`` -- never in its environment, command line,
labels or logs, so ``docker inspect`` does not show it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llem.images.base import ImageError
from llem.images.lock import LockFile
from llem.images.registry import EnsuredImage, daemon_hint, docker_client, ensure_image
from llem.images.resolve import resolve_image
from llem.runtimes import containers as ct
from llem.runtimes.base import RunOutcome, RunRequest, Runtime, RuntimeUnavailable
from llem_schema.runspec import LOG_FILE

#: The container's own stdout+stderr. The harness writes harness.log itself (and mirrors it to
#: stderr), so the raw stream goes to its own file; it is copied into harness.log when the
#: harness died before it could open its log (import errors, a missing entrypoint).
CONTAINER_LOG = "container.log"

if TYPE_CHECKING:  # pragma: no cover
    import docker
    from rich.console import Console

CONTAINER_RUN_DIR = "/llem/run"
CONTAINER_HF_CACHE = "/llem/hf-cache"
NVIDIA_HINT = (
    "Docker cannot hand GPUs to containers: install nvidia-container-toolkit, then "
    "`sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`"
)
STOP_GRACE_S = 10


def host_hf_cache() -> Path | None:
    """The host's HF hub cache if it exists (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface)."""
    if os.environ.get("HF_HUB_CACHE"):
        p = Path(os.environ["HF_HUB_CACHE"])
    elif os.environ.get("HF_HOME"):
        p = Path(os.environ["HF_HOME"]) / "hub"
    else:
        p = Path.home() / ".cache" / "huggingface" / "hub"
    return p if p.is_dir() else None


class DockerRuntime(Runtime):
    name = "docker"

    def __init__(
        self,
        image: EnsuredImage,
        client: docker.DockerClient | None = None,
        *,
        resolver: Callable[[str], EnsuredImage] | None = None,
        user: str | None = None,
        gpu_host: bool = False,
        shm_size: str | None = None,
        ipc_host: bool = False,
        network: str | None = None,
        hf_cache: Path | bool | None = True,
        console: Console | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.image = image
        self.client = client or docker_client()
        #: backend -> image: a study sweeping over backends needs one image per backend
        self.images: dict[str, EnsuredImage] = {}
        self.resolver = resolver
        #: never root: this process's uid:gid, or nobody when llem itself runs as root
        self.user = ct.container_user(user)
        self.gpu_host = gpu_host
        #: used only when a run directory has no experiment.json; otherwise the
        #: experiment's runtime.shm_size (what its result records) is what the container gets
        self.shm_size = shm_size or ct.DEFAULT_SHM_SIZE
        self.ipc_host = ipc_host
        # No network by default: models come from the mounted cache or local paths, and a
        # measurement should not depend on (or be disturbed by) downloads.
        self.network = network or os.environ.get("LLEM_DOCKER_NETWORK", "none")
        self.hf_cache = host_hf_cache() if hf_cache is True else (hf_cache or None)
        self.console = console
        self.command = command or [CONTAINER_RUN_DIR]
        self._container: Any = None
        self._lock = threading.Lock()
        #: set by :meth:`cleanup` (Ctrl+C / SIGTERM, from whichever thread sees it): the run
        #: in progress, or the next one if none is, ends as interrupted without a container
        #: left running; the run that reports it clears it
        self._interrupt = threading.Event()
        self._active = ct.ActiveRun()

    # -- Runtime API -------------------------------------------------------------------
    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            docker_client(timeout=5).close()
            return True, ""
        except ImageError as exc:
            return False, str(exc)
        except Exception as exc:  # docker SDK missing or broken: say so, never raise
            return False, f"docker runtime unusable: {exc}"

    def image_for(self, backend: str) -> EnsuredImage:
        if backend in self.images:
            return self.images[backend]
        if self.resolver is None or not self.images:
            return self.image
        self.images[backend] = self.resolver(backend)
        return self.images[backend]

    def container_kwargs(
        self, request: RunRequest, token_path: Path | None = None
    ) -> dict[str, Any]:
        """Everything handed to ``containers.create`` (separate so tests can check it).

        ``token_path``: the host file holding the HF token (:func:`containers.token_file`),
        mounted read-only and named by ``HF_TOKEN_PATH``; token variables never reach the
        container's environment, whatever the request or this process carries.
        """
        image = self.image_for(request.backend)
        run_dir = Path(request.run_dir).resolve()
        volumes = self._volumes(request, run_dir, token_path)
        kwargs: dict[str, Any] = {
            "image": image.run_ref,
            "command": list(self.command),
            "detach": True,
            "user": self.user.spec,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "volumes": volumes,
            "environment": self._environment(request, image, token_path),
            "device_requests": self._device_requests(request),
            "network_mode": self.network,
            "labels": ct.run_labels(run_dir),
            "working_dir": CONTAINER_RUN_DIR,
        }
        if self.ipc_host:
            kwargs["ipc_mode"] = "host"
        else:
            kwargs["shm_size"] = ct.shm_size(run_dir, self.shm_size)
        return kwargs

    def _volumes(
        self, request: RunRequest, run_dir: Path, token_path: Path | None
    ) -> dict[str, dict[str, str]]:
        volumes = {str(run_dir): {"bind": CONTAINER_RUN_DIR, "mode": "rw"}}
        if self.hf_cache is not None:
            volumes[str(Path(self.hf_cache).resolve())] = {"bind": CONTAINER_HF_CACHE, "mode": "ro"}
        for p in request.read_only_paths:
            # Same path inside and out, so paths written in experiment.json stay valid.
            hp = str(Path(p).resolve())
            volumes.setdefault(hp, {"bind": hp, "mode": "ro"})
        if token_path is not None:
            volumes[str(token_path)] = {"bind": ct.CONTAINER_TOKEN_PATH, "mode": "ro"}
        return volumes

    def _environment(
        self, request: RunRequest, image: EnsuredImage, token_path: Path | None
    ) -> dict[str, str]:
        env = {
            "LLEM_RUNTIME": "docker",
            "LLEM_IMAGE_REF": image.ref,
            "LLEM_IMAGE_DIGEST": image.digest or image.image_id,
            "LLEM_IMAGE_ID": image.image_id,
            "HOME": "/tmp",
        }
        if self.network == "none":
            env["HF_HUB_OFFLINE"] = "1"
        env.update(ct.without_tokens(request.env))
        env.pop("HF_HOME", None)  # a host path; the cache is mounted at CONTAINER_HF_CACHE
        if self.hf_cache is not None:
            env["HF_HUB_CACHE"] = CONTAINER_HF_CACHE
        if token_path is not None:
            env["HF_TOKEN_PATH"] = ct.CONTAINER_TOKEN_PATH
        return env

    def _device_requests(self, request: RunRequest) -> list[Any] | None:
        from docker.types import DeviceRequest

        gpus = [str(g) for g in request.gpus] or (["0"] if self.gpu_host else [])
        if not gpus:
            return None
        return [DeviceRequest(driver="nvidia", device_ids=gpus, capabilities=[["gpu"]])]

    def run(self, request: RunRequest) -> RunOutcome:
        with self._active.running():
            return self._run(request)

    def _run(self, request: RunRequest) -> RunOutcome:
        run_dir = Path(request.run_dir).resolve()
        log_path = run_dir / LOG_FILE
        image = self.image_for(request.backend)
        t0 = time.monotonic()
        timed_out = False
        if self._interrupt.is_set():  # interrupted before this run began: nothing starts
            exit_code, interrupted = 130, True
        else:
            # a container that a killed launcher left on this run directory goes first:
            # never two containers writing one run directory
            stop_run_containers(self.client, run_dir)
            token = ct.hf_token(request.env)
            with ct.run_dir_lent(run_dir, self.user), \
                    ct.token_file(token, self.user) as token_path:
                container = self._start(self.container_kwargs(request, token_path), image,
                                        run_dir)
                if container is None:  # cleanup() came while it was being created
                    exit_code, interrupted = 130, True
                else:
                    exit_code, timed_out, interrupted = self._follow(
                        container, request, run_dir, t0)
                _fill_missing_harness_log(run_dir)
                if timed_out:
                    _append(log_path, f"[llem] timed out after {request.timeout_s:g} s; "
                                      "container stopped")
                if interrupted:
                    _append(log_path, "[llem] interrupted (Ctrl+C / SIGTERM); container "
                                      "stopped and removed")
        if interrupted:
            self._interrupt.clear()
        return RunOutcome(
            exit_code=exit_code,
            duration_s=time.monotonic() - t0,
            log_path=log_path,
            runtime=self.name,
            image_ref=image.ref,
            image_digest=image.digest or image.image_id,
            timed_out=timed_out,
            interrupted=interrupted,
        )

    def _start(self, kwargs: dict[str, Any], image: EnsuredImage, run_dir: Path) -> Any:
        """Create, then start; None when :meth:`cleanup` came first (nothing is left). A
        container that cannot start is removed at once: a daemon error leaves nothing behind
        in the ``Created`` state."""
        from docker.errors import APIError, DockerException, ImageNotFound

        try:
            container = self.client.containers.create(**kwargs)
        except ImageNotFound as exc:
            raise RuntimeUnavailable(
                f"image {image.ref} is not present: run `llem images pull` first"
            ) from exc
        except APIError as exc:
            raise RuntimeUnavailable(start_error_hint(str(exc.explanation or exc))) from exc
        except DockerException as exc:
            raise RuntimeUnavailable(daemon_hint(exc)) from exc
        except BaseException:
            # Ctrl+C while the daemon was creating it: the container may exist all the same
            with contextlib.suppress(Exception):
                stop_run_containers(self.client, run_dir, grace_s=0)
            raise
        with self._lock:
            if self._interrupt.is_set():
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                return None
            self._container = container
        try:
            container.start()
        except APIError as exc:
            self._remove()
            if self._interrupt.is_set():  # cleanup() removed it under our feet
                return None
            raise RuntimeUnavailable(start_error_hint(str(exc.explanation or exc))) from exc
        except BaseException:
            self._remove()
            raise
        return container

    def _follow(
        self, container: Any, request: RunRequest, run_dir: Path, t0: float
    ) -> tuple[int, bool, bool]:
        """Copy the container's output while waiting for it; stop it on timeout or Ctrl+C,
        remove it in every case. Returns (exit code, timed out, interrupted)."""
        status = _StatusLine(self.console, self.image_for(request.backend).ref,
                             quiet=request.quiet)
        pump = threading.Thread(
            target=_pump_logs, args=(container, run_dir / CONTAINER_LOG, status), daemon=True
        )
        pump.start()
        timed_out = interrupted = False
        exit_code = 1
        try:
            with status:
                exit_code = self._wait(container, request.timeout_s, t0)
        except TimeoutError:
            timed_out = True
            exit_code = 124
        except KeyboardInterrupt:
            interrupted = True
            exit_code = 130
        finally:
            if timed_out:
                self._stop_current()
            elif interrupted:
                self.cleanup()
            pump.join(timeout=5)
            self._remove()
        if not timed_out and exit_code != 0 and self._interrupt.is_set():
            # stopped by cleanup() from another thread (the study's Ctrl+C / SIGTERM): an
            # interruption, not a failure of the run
            interrupted, exit_code = True, 130
        return exit_code, timed_out, interrupted

    def _wait(self, container: Any, timeout_s: float | None, t0: float) -> int:
        """Wait in short slices so Ctrl+C is seen promptly and the timeout is honoured."""
        import requests

        while True:
            left = None if timeout_s is None else timeout_s - (time.monotonic() - t0)
            if left is not None and left <= 0:
                raise TimeoutError
            try:
                res = container.wait(timeout=min(1.0, left) if left is not None else 1.0)
                return int(res.get("StatusCode", 1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                continue

    def cleanup(self) -> None:
        """Ctrl+C / SIGTERM: stop the container (SIGTERM, then SIGKILL after a grace period)
        and remove it. Safe from any thread and at any moment: a container being created
        right now is removed as soon as it exists, and the run reports itself interrupted."""
        with self._lock:
            self._interrupt.set()
        elsewhere = self._active.in_other_thread()
        self._stop_current()
        if elsewhere:  # let that run remove its token file and give the run dir back
            self._active.wait(ct.CLEANUP_WAIT_S)

    def _stop_current(self) -> None:
        with self._lock:
            c = self._container
        if c is None:
            return
        with contextlib.suppress(Exception):
            c.stop(timeout=STOP_GRACE_S)
        self._remove()

    def _remove(self) -> None:
        with self._lock:
            c, self._container = self._container, None
        if c is not None:
            with contextlib.suppress(Exception):
                c.remove(force=True)


def run_containers(client: Any, run_dir: Path) -> list[Any]:
    """Every container (running, exited or only Created) labelled with ``run_dir``."""
    label = f"{ct.LABEL_RUN_DIR}={Path(run_dir).resolve()}"
    # ignore_removed: one that goes while it is listed is not an error, just gone
    return list(client.containers.list(all=True, filters={"label": label}, ignore_removed=True))


def study_containers(client: Any, study_dir: Path) -> list[Any]:
    """Every container (any state) whose run directory lies in ``study_dir``."""
    prefix = str(Path(study_dir).resolve()) + os.sep
    found = client.containers.list(all=True, filters={"label": ct.LABEL_RUN_DIR},
                                   ignore_removed=True)
    return [c for c in found if (c.labels or {}).get(ct.LABEL_RUN_DIR, "").startswith(prefix)]


def stop_run_containers(client: Any, run_dir: Path, grace_s: float = STOP_GRACE_S) -> int:
    """Stop (SIGTERM, SIGKILL after ``grace_s``) and remove the containers labelled with
    ``run_dir`` -- left by a launcher that was killed -- and the token directory each was
    given. Returns how many there were. Daemon errors become RuntimeUnavailable."""
    from docker.errors import DockerException

    try:
        found = run_containers(client, run_dir)
    except DockerException as exc:
        raise RuntimeUnavailable(daemon_hint(exc)) from exc
    return stop_containers(found, grace_s)


def stop_study_containers(client: Any, study_dir: Path, grace_s: float = STOP_GRACE_S) -> int:
    """:func:`stop_run_containers` for every run directory of ``study_dir`` at once (a killed
    launcher's container that finished on its own: its run counts as done and is never run
    again, so nothing else would find it)."""
    from docker.errors import DockerException

    try:
        found = study_containers(client, study_dir)
    except DockerException as exc:
        raise RuntimeUnavailable(daemon_hint(exc)) from exc
    return stop_containers(found, grace_s)


def stop_containers(found: list[Any], grace_s: float = STOP_GRACE_S) -> int:
    """Stop and remove ``found``, remove each one's token directory, and give each one's run
    directory back (a root llem lent it to the container's uid)."""
    for c in found:
        with contextlib.suppress(Exception):
            c.stop(timeout=grace_s)
        with contextlib.suppress(Exception):
            c.remove(force=True)
        ct.discard_token_source(_token_source(c.attrs))
        run_dir = (c.labels or {}).get(ct.LABEL_RUN_DIR)
        if run_dir:
            ct.take_back(Path(run_dir))
    return len(found)


def _token_source(attrs: dict[str, Any]) -> str | None:
    """The host file mounted as the container's token file, if it had one."""
    for m in attrs.get("Mounts") or []:
        if m.get("Destination") == ct.CONTAINER_TOKEN_PATH:
            return m.get("Source")
    return None


def start_error_hint(message: str) -> str:
    low = message.lower()
    if "could not select device driver" in low or "nvidia-container-cli" in low:
        return NVIDIA_HINT
    if "no such image" in low:
        return f"{' '.join(message.split())}: run `llem images pull` first"
    return "docker could not start the container: " + " ".join(message.split())


def _fill_missing_harness_log(run_dir: Path) -> None:
    """The harness died before opening harness.log: give the user the container's output."""
    log, raw = run_dir / LOG_FILE, run_dir / CONTAINER_LOG
    with contextlib.suppress(OSError):
        if raw.is_file() and (not log.is_file() or log.stat().st_size == 0):
            log.write_bytes(raw.read_bytes())


def _append(path: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _pump_logs(container: Any, log_path: Path, status: _StatusLine) -> None:
    """Copy the container's stdout+stderr into harness.log as it comes, line by line."""
    buf = b""
    try:
        with open(log_path, "ab") as fh:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                fh.write(chunk)
                fh.flush()
                buf = (buf + chunk)[-4096:]
                lines = [ln for ln in buf.split(b"\n") if ln.strip()]
                if lines:
                    status.update(lines[-1].decode("utf-8", "replace"))
    except Exception:  # the container went away mid-stream (cleanup): nothing more to copy
        return


class _StatusLine:
    """A one-line live status (spinner + last log line); silent when quiet or not a TTY."""

    def __init__(self, console: Console | None, ref: str, quiet: bool) -> None:
        self._status: Any = None
        self.ref = ref
        if quiet:
            return
        from rich.console import Console

        console = console or Console(stderr=True)
        if console.is_terminal:
            self._status = console.status(f"[docker] {ref}: starting")

    def update(self, line: str) -> None:
        if self._status is not None:
            self._status.update(f"[docker] {line.strip()[:120]}")

    def __enter__(self) -> _StatusLine:
        if self._status is not None:
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)


def prepare_docker_runtime(
    backend: str,
    image: str | None = None,
    registry: str | None = None,
    pull_policy: str = "missing",
    cuda: str | None = None,
    lock: Path | None = None,
    *,
    console: Console | None = None,
    user: str | None = None,
    shm_size: str | None = None,
    show_progress: bool = True,
) -> tuple[DockerRuntime, str, str | None]:
    """Resolve, fetch and pin the image for ``backend``; return the runtime ready to run.

    This is what ``llem run --runtime docker --image/--registry/--pull/--cuda/--lock`` calls.
    Raises ImageError / RuntimeUnavailable (one line with the fix) or ConfigError (exit 2).
    """
    try:
        client = docker_client()
    except ImageError as exc:
        raise RuntimeUnavailable(str(exc)) from exc
    lockfile = LockFile.read(lock) if lock is not None else None

    def resolve(b: str, explicit: str | None = None) -> tuple[EnsuredImage, bool]:
        res = resolve_image(b, image=explicit, registry=registry, cuda=cuda, lock=lockfile)
        ens = ensure_image(client, res, pull_policy, console, show_progress)
        return ens, res.driver is not None

    ensured, gpu_host = resolve(backend, image)
    runtime = DockerRuntime(
        ensured, client, user=user, gpu_host=gpu_host, shm_size=shm_size, console=console,
        # other backends of a sweep resolve their own image (an explicit --image is per backend)
        resolver=lambda b: resolve(b)[0],
    )
    runtime.images[backend] = ensured
    return runtime, ensured.ref, ensured.digest or ensured.image_id


def make(
    backend: str = "pytorch",
    image: str | None = None,
    registry: str | None = None,
    pull_policy: str = "missing",
    cuda: str | None = None,
    lock: Path | None = None,
    **_: object,
) -> DockerRuntime:
    """Entry point used by :func:`llem.study.execute.make_runtime`; errors become
    RuntimeUnavailable."""
    try:
        return prepare_docker_runtime(backend, image, registry, pull_policy, cuda, lock)[0]
    except ImageError as exc:
        raise RuntimeUnavailable(str(exc)) from exc
