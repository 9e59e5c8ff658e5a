"""Podman runtime: the same images as docker, rootless-capable, GPUs through CDI.

Chosen on nodes without a Docker daemon (``llem run-one`` falls back to it; HPC sites
often ship podman instead of docker). GPUs are requested as CDI devices
(``--device nvidia.com/gpu=<index|UUID>``; the node needs ``nvidia-ctk cdi generate``).
Rootless podman maps the caller's uid into the container with ``--userns=keep-id`` so
result files belong to the user. Secrets are passed by name (``-e NAME``), never as
``NAME=value`` on the command line, so they do not show in ``ps``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

from pydantic import BaseModel, ConfigDict, Field

from llem.runtimes.base import RunOutcome, RunRequest, Runtime, RuntimeUnavailable
from llem.runtimes.child import SessionChild
from llem_schema.runspec import LOG_FILE

CONTAINER_RUN_DIR = "/llem/run"


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

    def __init__(self, image: str | None = None, shm_size: str = "8g") -> None:
        self.image = image
        self.shm_size = shm_size
        self._container: str | None = None
        self._child = SessionChild()
        self._rootless: bool | None = None

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
        if _podman("image", "exists", ref).returncode == 0:
            return
        out = _podman("pull", "--quiet", ref, timeout=3600)
        if out.returncode != 0:
            raise RuntimeUnavailable(f"podman pull {ref}: {out.stderr.strip()}")

    def image_digest(self, ref: str) -> str | None:
        out = _podman("image", "inspect", "--format", "json", ref)
        if out.returncode != 0:
            return None
        images = [PodmanImage.model_validate(d) for d in json.loads(out.stdout)]
        for img in images:
            for d in img.RepoDigests:
                if "@" in d:
                    return d.split("@", 1)[1]
        return images[0].Id if images else None

    def command(self, request: RunRequest, name: str) -> list[str]:
        """The full ``podman run`` argv (no secret values in it)."""
        ref = request.image or self.image
        if ref is None:
            raise RuntimeUnavailable("podman: no image; set runtime.image (or --image)")
        cmd = ["podman", *_env_args("LLEM_PODMAN_GLOBAL_ARGS"), "run", "--rm",
               "--name", name, "--shm-size", self.shm_size,
               "--security-opt", "label=disable",
               # like the docker runtime: no network unless asked (HF cache is mounted)
               "--network", os.environ.get("LLEM_PODMAN_NETWORK", "none"),
               *_env_args("LLEM_PODMAN_RUN_ARGS"),
               "-v", f"{request.run_dir.resolve()}:{CONTAINER_RUN_DIR}:rw",
               "-e", "LLEM_RUNTIME=podman", "-e", "PYTHONUNBUFFERED=1"]
        if self.rootless():
            cmd += ["--userns=keep-id"]
        else:
            cmd += ["--user", f"{os.getuid()}:{os.getgid()}"]
        for g in request.gpus:
            cmd += ["--device", f"nvidia.com/gpu={g}"]
        for p in request.read_only_paths:
            cmd += ["-v", f"{p}:{p}:ro"]
        for k in sorted(request.env):
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
        name = f"llem-{uuid.uuid4().hex[:12]}"
        cmd = self.command(request, name)
        env = dict(os.environ)
        env.update(request.env)
        self._container = name
        with open(request.run_dir / "podman.log", "ab") as log:
            res = self._child.run(
                cmd, env, request.timeout_s, stdout=log, stderr=subprocess.STDOUT,
                on_stop=self.cleanup,
            )
        ref = request.image or self.image
        return RunOutcome(
            exit_code=res.code, duration_s=res.duration_s,
            log_path=request.run_dir / LOG_FILE, runtime=self.name, image_ref=ref,
            image_digest=self.image_digest(ref) if ref else None,
            timed_out=res.timed_out, interrupted=res.interrupted,
        )

    def cleanup(self) -> None:
        if self._container is None:
            return
        _podman("stop", "--time", "10", self._container, timeout=60)
        _podman("rm", "--force", "--ignore", self._container, timeout=60)
        proc = self._child.proc
        if proc is not None and proc.poll() is None:
            proc.wait(timeout=30)


def ensure_available() -> None:
    ok, why = PodmanRuntime.available()
    if not ok:
        raise RuntimeUnavailable(why)


__all__ = ["PodmanRuntime", "ensure_available", "info"]
