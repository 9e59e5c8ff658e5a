"""Execute runs: write the run directory, hand it to a runtime, read the result back."""

from __future__ import annotations

import sys
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
        if not importable_here(backend):  # else a vLLM CPU build may well run here
            require_gpu(backend, docker_options.get("cuda"))
        return LocalRuntime()
    require_gpu(backend, docker_options.get("cuda"))
    if name == "podman":
        from llem.runtimes import podman

        # the same reference the docker runtime would pick (CUDA match, --image, --lock)
        return podman.make(backend=backend, **docker_options)  # type: ignore[arg-type]
    if name in ("docker", "auto"):
        return _docker_or_local(name, backend, docker_options)
    raise ConfigError(
        f"--runtime: unknown runtime '{name}'; choose from auto, local, docker, podman"
    )


#: the module each backend needs in the current environment for the local runtime
LOCAL_MODULES = {"pytorch": ("torch", "transformers"), "vllm": ("vllm",),
                 "tensorrt": ("tensorrt_llm",)}
GPU_ONLY = ("vllm", "tensorrt")


def importable_here(backend: str) -> bool:
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in LOCAL_MODULES.get(backend, ()))


def require_gpu(backend: str, cuda: object = None) -> None:
    """vLLM and TensorRT-LLM run only on NVIDIA GPUs: say so before pulling gigabytes."""
    if backend not in GPU_ONLY or cuda:
        return
    from llem.images.cuda import detect_driver_cuda

    if detect_driver_cuda() is None:
        raise RuntimeUnavailable(
            f"the {backend} engine needs an NVIDIA GPU and driver; this host has none (no NVML, "
            "no nvidia-smi). Run it on a GPU host, or use --backend pytorch here")


def _docker_or_local(name: str, backend: str, docker_options: dict[str, object]) -> Runtime:
    """docker: the image or a one-line error. auto: the image when a daemon answers; the
    current environment only when the backend is importable here, and never silently."""
    from llem.runtimes.local import LocalRuntime

    local_ok = importable_here(backend)
    try:
        from llem.runtimes import docker as docker_rt
    except ImportError:
        why = "the docker SDK is not installed (pip install docker)"
    else:
        ok, why = docker_rt.DockerRuntime.available()
        if ok:
            try:
                return docker_rt.make(backend=backend, **docker_options)
            except RuntimeUnavailable as exc:
                if name == "docker" or not local_ok:
                    raise
                why = str(exc)
    if name == "docker":
        raise RuntimeUnavailable(why)
    if not local_ok:
        raise RuntimeUnavailable(
            f"runtime auto: no image for {backend} ({why}), and the {backend} backend is not "
            f"installed here (pip install 'llenergymeasure[{backend}]'); fix the image access "
            "or choose --runtime local in an environment that has it")
    print(f"llem: runtime auto -> local: {why}; measuring in this Python environment",
          file=sys.stderr)
    return LocalRuntime()


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
        # the runtime's log (podman: podman.log, where podman's own errors are too)
        return RunReport(run_dir, outcome, None, f"{msg} [{outcome.log_path}]")
    try:
        result = read_result(run_dir)
    except ConfigError as exc:
        return RunReport(run_dir, outcome, None, str(exc))
    return RunReport(run_dir, outcome, result, "ok")
