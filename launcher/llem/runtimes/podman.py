"""Podman runtime: the same images as docker, rootless-capable, GPUs through CDI.

Chosen on nodes without a Docker daemon (``llem run-one`` falls back to it; HPC sites
often ship podman instead of docker). GPUs are requested as CDI devices
(``--device nvidia.com/gpu=<index|UUID>``; the node needs ``nvidia-ctk cdi generate``).
Rootless podman maps the caller's uid into the container with ``--userns=keep-id`` so
result files belong to the user; rootful podman (llem as root) runs it as nobody and
hands the run directory over and back. The container is hardened like a docker one
(:mod:`llem.runtimes.containers`): ``--cap-drop=all``, ``no-new-privileges``, labels
naming its run, the experiment's ``runtime.shm_size``, and the HF token as a read-only
file named by ``HF_TOKEN_PATH``. Other variables are passed by name (``-e NAME``), never as
``NAME=value`` on the command line, so values do not show in ``ps``.

podman's own output and the harness's (mirrored to stderr) both go to ``podman.log`` in
the run directory: a container that never got as far as the harness (a bad flag, a
missing image, an OCI runtime error) has its error only there, so that is the log a
failed run points to.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from llem.images.lock import LockEntry
from llem.images.refs import split_ref
from llem.runtimes import containers as ct
from llem.runtimes.base import RunOutcome, RunRequest, Runtime, RuntimeUnavailable
from llem.runtimes.child import SessionChild

CONTAINER_RUN_DIR = "/llem/run"
#: podman's and the harness's output, in the run directory (see the module docstring)
PODMAN_LOG = "podman.log"
#: host variables that are never handed to the container: host paths mean nothing inside
#: (the docker runtime drops HF_HOME too), tokens go as a file
NOT_PASSED = ("HF_HOME", *ct.TOKEN_VARS)
STOP_GRACE_S = 10


class PodmanSecurity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rootless: bool = False


class PodmanHost(BaseModel):
    model_config = ConfigDict(extra="ignore")
    security: PodmanSecurity = Field(default_factory=PodmanSecurity)
    cgroupVersion: str | None = None


class PodmanVersion(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Version: str


class PodmanInfo(BaseModel):
    """The part of ``podman info --format json`` we rely on."""

    model_config = ConfigDict(extra="ignore")
    host: PodmanHost
    version: PodmanVersion


class PodmanImage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Id: str
    RepoDigests: list[str] = Field(default_factory=list)


def _env_args(name: str) -> list[str]:
    """Site-specific podman flags from the environment (split like a shell would).

    ``LLEM_PODMAN_GLOBAL_ARGS`` go before the subcommand (e.g. ``--runtime runc
    --cgroup-manager=cgroupfs`` on hosts without systemd); ``LLEM_PODMAN_RUN_ARGS`` go to
    ``podman run`` (e.g. ``--ulimit nofile=1024:1024 --ulimit nproc=4096:4096`` where the
    host refuses podman's default of raising rlimits to the maximum).
    """
    import shlex

    return shlex.split(os.environ.get(name, ""))


def _podman(*args: str, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *_env_args("LLEM_PODMAN_GLOBAL_ARGS"), *args],
        capture_output=True, text=True, timeout=timeout,
    )


def info() -> PodmanInfo:
    out = _podman("info", "--format", "json", timeout=30)
    if out.returncode != 0:
        raise RuntimeUnavailable(f"podman info failed: {out.stderr.strip()}")
    return PodmanInfo.model_validate_json(out.stdout)


class PodmanRuntime(Runtime):
    name = "podman"

    def __init__(self, image: str | None = None, shm_size: str | None = None,
                 user: str | None = None, locked: LockEntry | None = None) -> None:
        #: with a lock entry: the pinned digest (``repo@sha256:...``), else its tag, and
        #: :meth:`ensure_image` refuses an image whose id is not the pinned one
        self.locked = locked
        if locked is not None:
            image = (f"{split_ref(locked.ref)[0]}@{locked.digest}" if locked.digest
                     else locked.ref)
        self.image = image
        #: only when a run directory has no experiment.json; otherwise runtime.shm_size
        self.shm_size = shm_size or ct.DEFAULT_SHM_SIZE
        #: rootful podman: never root (nobody when llem runs as root)
        self.user = ct.container_user(user)
        self._container: str | None = None
        self._child = SessionChild()
        self._rootless: bool | None = None
        self._active = ct.ActiveRun()

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if shutil.which("podman") is None:
            return False, "podman not found on PATH"
        try:
            info()
        except (RuntimeUnavailable, subprocess.TimeoutExpired, ValueError) as exc:
            return False, str(exc)
        return True, ""

    def rootless(self) -> bool:
        if self._rootless is None:
            self._rootless = info().host.security.rootless
        return self._rootless

    def ensure_image(self, image: str | None) -> None:
        ref = image or self.image
        if ref is None:
            raise RuntimeUnavailable("podman: no image; set runtime.image (or --image)")
        if _podman("image", "exists", ref).returncode != 0:
            out = _podman("pull", "--quiet", ref, timeout=3600)
            if out.returncode != 0:
                raise RuntimeUnavailable(f"podman pull {ref}: {out.stderr.strip()}")
        if self.locked is not None and ref == self.image:
            self._check_pinned(ref)

    def _check_pinned(self, ref: str) -> None:
        """The image under ``ref`` is the one the lock pins (its id, the config digest, is
        the same under docker and podman), as the docker runtime checks."""
        from llem.images.registry import lock_mismatch

        assert self.locked is not None
        images = self._inspect(ref)
        found = images[0].Id if images else "none"
        found = found if found.startswith("sha256:") else f"sha256:{found}"
        if found != self.locked.image_id:
            raise RuntimeUnavailable(lock_mismatch(self.locked, found))

    def _inspect(self, ref: str) -> list[PodmanImage]:
        out = _podman("image", "inspect", "--format", "json", ref)
        if out.returncode != 0:
            return []
        return [PodmanImage.model_validate(d) for d in json.loads(out.stdout)]

    def image_digest(self, ref: str) -> str | None:
        if self.locked is not None and self.locked.digest and ref == self.image:
            return self.locked.digest  # the pinned one, not whichever RepoDigest comes first
        images = self._inspect(ref)
        for img in images:
            for d in img.RepoDigests:
                if "@" in d:
                    return d.split("@", 1)[1]
        return images[0].Id if images else None

    def command(self, request: RunRequest, name: str,
                token_path: Path | None = None) -> list[str]:
        """The full ``podman run`` argv (no secret values in it)."""
        ref = request.image or self.image
        if ref is None:
            raise RuntimeUnavailable("podman: no image; set runtime.image (or --image)")
        run_dir = request.run_dir.resolve()
        cmd = ["podman", *_env_args("LLEM_PODMAN_GLOBAL_ARGS"), "run", "--rm",
               "--name", name, "--shm-size", str(ct.shm_size(run_dir, self.shm_size)),
               "--cap-drop=all", "--security-opt", "no-new-privileges",
               "--security-opt", "label=disable",
               # like the docker runtime: no network unless asked (HF cache is mounted)
               "--network", os.environ.get("LLEM_PODMAN_NETWORK", "none"),
               *_env_args("LLEM_PODMAN_RUN_ARGS"),
               "-v", f"{run_dir}:{CONTAINER_RUN_DIR}:rw",
               "-e", "LLEM_RUNTIME=podman", "-e", "PYTHONUNBUFFERED=1"]
        for key, value in ct.run_labels(run_dir).items():
            cmd += ["--label", f"{key}={value}"]
        cmd += ["--userns=keep-id"] if self.rootless() else ["--user", self.user.spec]
        for g in request.gpus:
            cmd += ["--device", f"nvidia.com/gpu={g}"]
        for p in request.read_only_paths:
            cmd += ["-v", f"{p}:{p}:ro"]
        if token_path is not None:
            cmd += ["-v", f"{token_path}:{ct.CONTAINER_TOKEN_PATH}:ro",
                    "-e", f"HF_TOKEN_PATH={ct.CONTAINER_TOKEN_PATH}"]
        for k in sorted(request.env):
            if k not in NOT_PASSED:
                cmd += ["-e", k]  # value comes from our environment, not the argv
        for k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                  "SLURMD_NODENAME"):
            if k in os.environ:
                cmd += ["-e", k]
        # what the result's environment block records (not secrets: argv is fine)
        cmd += ["-e", f"LLEM_IMAGE_REF={ref}"]
        digest = self.image_digest(ref)
        if digest:
            cmd += ["-e", f"LLEM_IMAGE_DIGEST={digest}"]
        # explicit entrypoint: our images set ENTRYPOINT to the harness, and a CMD of
        # "python -m llem_harness ..." on top of it would reach the harness as its argv
        cmd += ["--entrypoint", "python", ref, "-m", "llem_harness", CONTAINER_RUN_DIR]
        return cmd

    def run(self, request: RunRequest) -> RunOutcome:
        with self._active.running():
            return self._run(request)

    def _run(self, request: RunRequest) -> RunOutcome:
        run_dir = request.run_dir.resolve()
        # a container that a killed launcher left on this run directory goes first
        stop_run_containers(run_dir)
        name = f"llem-{uuid.uuid4().hex[:12]}"
        # the podman client's own environment carries no token either
        env = {k: v for k, v in {**os.environ, **request.env}.items() if k not in ct.TOKEN_VARS}
        token = ct.hf_token(request.env)
        self._container = name
        with ct.run_dir_lent(run_dir, self.user), ct.token_file(token, self.user) as tp:
            cmd = self.command(request, name, tp)
            with open(run_dir / PODMAN_LOG, "ab") as log:
                res = self._child.run(
                    cmd, env, request.timeout_s, stdout=log, stderr=subprocess.STDOUT,
                    on_stop=self._stop_container,
                )
        ref = request.image or self.image
        return RunOutcome(
            exit_code=res.code, duration_s=res.duration_s,
            log_path=run_dir / PODMAN_LOG, runtime=self.name, image_ref=ref,
            image_digest=self.image_digest(ref) if ref else None,
            timed_out=res.timed_out, interrupted=res.interrupted,
        )

    def cleanup(self) -> None:
        """Ctrl+C / SIGTERM, from any thread: stop and remove the container; a run about to
        start does not start, and the run reports itself interrupted."""
        elsewhere = self._active.in_other_thread()
        self._child.cancel(on_stop=self._stop_container)
        if elsewhere:  # let that run remove its token file and give the run dir back
            self._active.wait(ct.CLEANUP_WAIT_S)

    def _stop_container(self) -> None:
        """Stop (SIGTERM, SIGKILL after the grace period) and remove the container, then end
        the ``podman run`` client (SIGTERM to its group: podman proxies it to a container
        that was still being created, and ``--rm`` removes that)."""
        name = self._container
        if name is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            _podman("stop", "--ignore", "--time", str(STOP_GRACE_S), name,
                    timeout=STOP_GRACE_S + 60)
        self._child.stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            _podman("rm", "--force", "--ignore", name, timeout=60)


def run_containers(run_dir: Path) -> list[str]:
    """Ids of the containers (any state) labelled with ``run_dir``."""
    label = f"{ct.LABEL_RUN_DIR}={Path(run_dir).resolve()}"
    try:
        out = _podman("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={label}",
                      timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeUnavailable(f"podman ps did not answer in {exc.timeout:g} s") from None
    if out.returncode != 0:
        raise RuntimeUnavailable(f"podman ps failed: {out.stderr.strip()}")
    return out.stdout.split()


def study_containers(study_dir: Path) -> list[str]:
    """Ids of the containers (any state) whose run directory lies in ``study_dir``."""
    prefix = str(Path(study_dir).resolve()) + os.sep
    try:
        out = _podman("ps", "--all", "--no-trunc", "--filter", f"label={ct.LABEL_RUN_DIR}",
                      "--format", "json", timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeUnavailable(f"podman ps did not answer in {exc.timeout:g} s") from None
    if out.returncode != 0:
        raise RuntimeUnavailable(f"podman ps failed: {out.stderr.strip()}")
    try:
        rows = json.loads(out.stdout or "[]") or []
    except ValueError:
        return []
    return [r["Id"] for r in rows
            if ((r.get("Labels") or {}).get(ct.LABEL_RUN_DIR) or "").startswith(prefix)]


def stop_run_containers(run_dir: Path, grace_s: float = STOP_GRACE_S) -> int:
    """Stop and remove the containers labelled with ``run_dir`` (left by a launcher that
    was killed) and the token directory each was given; returns how many there were."""
    ids = run_containers(run_dir)
    if ids:
        stop_containers(ids, grace_s)
        ct.take_back(Path(run_dir).resolve())
    return len(ids)


def stop_study_containers(study_dir: Path, grace_s: float = STOP_GRACE_S) -> int:
    """:func:`stop_run_containers` for every run directory of ``study_dir`` at once."""
    ids = study_containers(study_dir)
    if ids:
        stop_containers(ids, grace_s)
        for d in Path(study_dir).glob("*/cycle-*"):
            ct.take_back(d.resolve())
    return len(ids)


def stop_containers(ids: list[str], grace_s: float = STOP_GRACE_S) -> None:
    sources = [_token_source(i) for i in ids]
    _podman("stop", "--ignore", "--time", str(int(grace_s)), *ids, timeout=grace_s + 60)
    _podman("rm", "--force", "--ignore", *ids, timeout=60)
    for src in sources:
        ct.discard_token_source(src)


def _token_source(container_id: str) -> str | None:
    out = _podman("inspect", "--format", "json", container_id, timeout=60)
    if out.returncode != 0:
        return None
    try:
        mounts = json.loads(out.stdout)[0].get("Mounts") or []
    except (ValueError, IndexError, AttributeError):
        return None
    for m in mounts:
        if m.get("Destination") == ct.CONTAINER_TOKEN_PATH:
            return m.get("Source")
    return None


def make(backend: str = "pytorch", image: str | None = None, registry: str | None = None,
         cuda: str | None = None, lock: Path | None = None, **_: object) -> PodmanRuntime:
    """The podman runtime with the image the docker runtime would run: the CUDA-matched
    reference, an explicit ``--image``, or with ``--lock`` the pinned digest, refused
    (one line) when the image found there is not the pinned one."""
    from llem.images.base import ImageError
    from llem.images.lock import LockFile
    from llem.images.resolve import resolve_image

    ensure_available()
    lockfile = LockFile.read(lock) if lock is not None else None  # ConfigError: exit 2
    try:
        res = resolve_image(backend, image=image, registry=registry, cuda=cuda, lock=lockfile)
    except ImageError as exc:
        raise RuntimeUnavailable(str(exc)) from None
    rt = PodmanRuntime(image=res.ref, locked=res.locked)
    rt.ensure_image(None)
    return rt


def ensure_available() -> None:
    ok, why = PodmanRuntime.available()
    if not ok:
        raise RuntimeUnavailable(why)


__all__ = ["PodmanRuntime", "ensure_available", "info", "make"]
