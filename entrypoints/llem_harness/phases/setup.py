"""Phase 1: pick the device, load (or reuse) the backend, tokenise the workload, open the
instruments (energy source, power sampler). Nothing here is inside a measured window."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llem_harness.backends import get_backend_class
from llem_harness.backends.base import InferenceBackend, LoadInfo
from llem_harness.energy.select import select_source
from llem_harness.nvml_devices import parse_visible_devices
from llem_harness.phases.context import RunContext
from llem_harness.sampler import PowerSampler
from llem_harness.workload import arrival_times, load_prompts
from llem_schema.runspec import RunSpec

log = logging.getLogger("llem_harness")


def detect_device(spec: RunSpec) -> tuple[str, list[int]]:
    """('cuda', visible indices) when a GPU is usable, else ('cpu', []).

    Engine backends (vLLM, TensorRT-LLM) start worker processes that initialise CUDA
    themselves; a harness that touched CUDA first makes them fail ("Cannot re-initialize
    CUDA in forked subprocess"). For those the GPUs are counted through NVML, which creates
    no CUDA state; only the PyTorch backend, which runs in this process, asks torch.
    """
    n = len(spec.gpus) or 1
    if spec.config.backend != "pytorch":
        count = _nvml_visible_count()
        return ("cuda", list(range(min(n, count)))) if count else ("cpu", [])
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda", list(range(min(n, torch.cuda.device_count())))
    except ImportError:
        pass
    return "cpu", []


def _nvml_visible_count() -> int:
    """GPUs this process may use: CUDA_VISIBLE_DEVICES entries, or every NVML device."""
    try:
        import pynvml

        pynvml.nvmlInit()
        visible = parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
        return len(visible) if visible is not None else int(pynvml.nvmlDeviceGetCount())
    except Exception:
        return 0


#: config sections read when a backend loads: a run may reuse a loaded backend only when
#: these are equal (the launcher groups runs so; this check keeps any other caller honest)
LOAD_TIME_FIELDS = {"model", "backend", "pytorch", "vllm", "tensorrt", "extra"}


class Session:
    """Backends kept loaded across the runs of one harness process (``study.reuse_model``).

    The launcher only groups runs whose load-time settings are equal, so a backend found
    here for the same (backend, device, indices) can take the next run's config as is.
    """

    def __init__(self) -> None:
        self.backend: InferenceBackend | None = None
        self.info: LoadInfo | None = None
        self.key: tuple[Any, ...] | None = None
        #: batch shape -> steady warm-up latency reached on the loaded backend
        self.steady: dict[tuple[int, ...], float] = {}
        #: (batch shape, probe) -> FLOPs probe result on the loaded backend
        self.flops_probes: dict[Any, Any] = {}

    def acquire(self, spec: RunSpec, device: str, indices: list[int]) -> tuple[Any, bool]:
        # engines pick their engine class by traffic mode (offline LLM vs async engine)
        load_time = spec.config.model_dump_json(include=LOAD_TIME_FIELDS) + \
            spec.config.workload.traffic.mode
        key = (spec.config.backend, device, tuple(indices), load_time)
        if self.backend is not None and self.key == key:
            self.backend.config = spec.config
            return self.backend, True
        self.close()
        self.backend = get_backend_class(spec.config.backend)(spec.config, device, indices)
        self.key = key
        return self.backend, False

    def close(self) -> None:
        if self.backend is not None and self.info is not None:
            self.backend.unload()
        self.backend = self.info = self.key = None
        self.steady, self.flops_probes = {}, {}


def load(spec: RunSpec, run_dir: Path, session: Session) -> RunContext:
    """Load the model (or take it from the session) and tokenise the workload."""
    cfg = spec.config
    started = datetime.now(timezone.utc)
    device, indices = detect_device(spec)
    log.info("device=%s indices=%s backend=%s model=%s", device, indices, cfg.backend, cfg.model)
    backend, reused = session.acquire(spec, device, indices)
    if reused and session.info is not None:
        note = "model reused from an earlier run of this process (load_time_s is that load)"
        info = dataclasses.replace(session.info, notes=[*session.info.notes, note])
    else:
        info = session.info = backend.load()
        log.info("loaded in %.2fs (%s params, dtype=%s)", info.load_time_s,
                 info.num_parameters, info.dtype)
    prompts = load_prompts(cfg.workload, backend.token_space)
    batches = backend.make_batches(prompts)
    poisson = cfg.workload.traffic.mode == "poisson"
    return RunContext(
        spec=spec, run_dir=run_dir, started=started, device=device, indices=indices,
        backend_cls=type(backend), backend=backend, info=info, prompts=prompts,
        batches=batches, arrivals=arrival_times(cfg.workload, len(prompts)) if poisson else None,
        reused_model=reused,
    )


def open_instruments(ctx: RunContext, stack: ExitStack) -> None:
    """Energy source and power sampler, closed by ``stack`` whatever happens."""
    cfg = ctx.cfg
    ctx.source, ctx.energy_reason = select_source(
        cfg.measurement.energy_backend, ctx.device, ctx.indices
    )
    if ctx.energy_reason:
        log.info("energy: %s", ctx.energy_reason)
    if ctx.source is not None:
        src = ctx.source
        stack.callback(src.close)
    if cfg.measurement.timeseries and ctx.device == "cuda":
        sampler = PowerSampler(ctx.indices, cfg.measurement.sample_interval_ms / 1000.0)
        if sampler.active:
            ctx.sampler = stack.enter_context(sampler)
            if sampler.fallback_reason:
                ctx.warnings.append(f"power time series: {sampler.fallback_reason}")
        else:
            ctx.warnings.append(f"power time series unavailable: {sampler.unavailable_reason}")
    ctx.t_origin = time.monotonic()
