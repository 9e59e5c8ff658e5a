"""Execute runs: write the run directory, hand it to a runtime, read the result back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llem.runtimes.base import RunOutcome, RunRequest, Runtime, RuntimeUnavailable
from llem.study.rundir import read_result, write_spec
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from llem_schema.exit_codes import describe
from llem_schema.result import ExperimentResult
from llem_schema.runspec import RunSpec

#: environment variables passed through to the harness by name (value never logged)
PASSTHROUGH_ENV = ("HF_TOKEN", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass
class RunReport:
    run_dir: Path
    outcome: RunOutcome
    result: ExperimentResult | None
    message: str

    @property
    def ok(self) -> bool:
        return self.result is not None


def make_runtime(name: str, backend: str = "pytorch", **docker_options: object) -> Runtime:
    """Instantiate a runtime by name; ``auto`` = docker when a daemon answers, else local."""
    from llem.runtimes.local import LocalRuntime

    if name == "local":
        return LocalRuntime()
    if name == "podman":
        from llem.images import base as images_base
        from llem.images import resolve as images_resolve
        from llem.runtimes import podman

        podman.ensure_available()
        try:  # the same CUDA-matched reference the docker runtime would pick
            ref = images_resolve.resolve_image(
                backend,
                image=docker_options.get("image"),  # type: ignore[arg-type]
                registry=docker_options.get("registry"),  # type: ignore[arg-type]
                cuda=docker_options.get("cuda"),  # type: ignore[arg-type]
            ).ref
        except images_base.ImageError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        rt = podman.PodmanRuntime(image=ref)
        rt.ensure_image(ref)
        return rt
    if name in ("docker", "auto"):
        try:
            from llem.runtimes import docker as docker_rt
        except ImportError:
            if name == "docker":
                raise RuntimeUnavailable(
                    "the docker runtime is not available in this install"
                ) from None
            return LocalRuntime()
        ok, why = docker_rt.DockerRuntime.available()
        if not ok:
            if name == "docker":
                raise RuntimeUnavailable(why)
            return LocalRuntime()
        try:
            return docker_rt.make(backend=backend, **docker_options)
        except RuntimeUnavailable:
            if name == "docker":
                raise
            # auto: a daemon answers but no usable image (e.g. no registry reachable);
            # measuring in the current environment beats failing.
            return LocalRuntime()
    raise ConfigError(
        f"--runtime: unknown runtime '{name}'; choose from auto, local, docker, podman"
    )


def model_mounts(config: ExperimentConfig) -> list[Path]:
    """Host paths the harness must read: a local model directory, a local dataset."""
    paths = []
    for candidate in (config.model, config.workload.dataset):
        p = Path(candidate).expanduser()
        if not candidate.startswith("builtin:") and p.exists():
            paths.append(p.resolve())
    return paths


def harness_env(runtime_name: str, run_dir: Path) -> dict[str, str]:
    """Environment handed to the harness: pass-through names, plus (local runtime) a
    per-study idle-baseline cache so a study measures idle power once per GPU and hour."""
    import os

    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    if runtime_name == "local" and "LLEM_BASELINE_CACHE" not in os.environ:
        env["LLEM_BASELINE_CACHE"] = str(run_dir.resolve().parents[1] / ".baseline-cache")
    return env


def execute(
    runtime: Runtime,
    spec: RunSpec,
    run_dir: Path,
    env: dict[str, str] | None = None,
    quiet: bool = False,
) -> RunReport:

    write_spec(run_dir, spec)
    passthrough = harness_env(runtime.name, run_dir)
    passthrough.update(env or {})
    request = RunRequest(
        run_dir=run_dir,
        backend=spec.config.backend,
        gpus=list(spec.gpus),
        image=spec.image_ref,
        timeout_s=spec.config.runtime.timeout_seconds,
        env=passthrough,
        read_only_paths=model_mounts(spec.config),
        quiet=quiet,
    )
    outcome = runtime.run(request)
    if outcome.exit_code != 0:
        if outcome.timed_out:
            msg = f"timed out after {outcome.duration_s:.0f}s (runtime.timeout_seconds)"
        elif outcome.interrupted:
            msg = "interrupted"
        else:
            msg = describe(outcome.exit_code)
        return RunReport(run_dir, outcome, None, f"{msg} [{run_dir}/harness.log]")
    try:
        result = read_result(run_dir)
    except ConfigError as exc:
        return RunReport(run_dir, outcome, None, str(exc))
    return RunReport(run_dir, outcome, result, "ok")
