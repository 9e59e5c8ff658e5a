"""TensorRT-LLM backend: LLM API on the TensorRT-engine path, with an engine cache.

A TensorRT engine is compiled for fixed limits (BuildConfig); compiling takes minutes and
is not inference, so it is measured apart: :meth:`TensorRTBackend.load` first looks for an
engine built earlier with the same model + build settings + TensorRT-LLM version (the key
from :func:`tensorrt_mapping.engine_cache_key`), and only builds (then saves, atomically)
when none exists. ``build_time_s`` is reported separately from ``load_time_s``.

TTFT/ITL: every request is streamed through ``LLM.generate_async(..., streaming=True)``, so
token arrival times are observed directly; offline traffic submits all requests at once
(what ``LLM.generate`` does internally), Poisson traffic at seeded exponential arrival times.
Prefill is generation with ``max_tokens=1`` (documented approximation, as for vLLM).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from llem_harness.backends.base import (
    BackendNotInstalled,
    Batch,
    BatchOutput,
    InferenceBackend,
    LoadInfo,
    Request,
)
from llem_harness.backends.engine_common import (
    engine_architecture,
    engine_token_space,
    group_requests,
    latencies_from_token_times,
    model_directory,
    pin_visible_devices,
    poisson_arrivals,
)
from llem_harness.backends.tensorrt_mapping import (
    engine_cache_key,
    engine_kwargs,
    sampling_kwargs,
)

INSTALL_HINT = (
    "the tensorrt backend needs the 'tensorrt_llm' package: run it in the "
    "llenergymeasure/tensorrt image (llem picks it for backend: tensorrt); it is installed "
    "from NVIDIA's package index, not PyPI"
)

#: Runtime-only arguments: accepted when loading a saved engine (build args are baked in).
RUNTIME_ARGS = (
    "kv_cache_config",
    "extended_runtime_perf_knob_config",
    "scheduler_config",
    "enable_chunked_prefill",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "trust_remote_code",
)


def default_engine_cache_dir() -> Path:
    """$LLEM_ENGINE_CACHE, else ~/.cache/llem/engines (mount it to share across a study)."""
    env = os.environ.get("LLEM_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "llem" / "engines"


def _import_trt() -> dict[str, Any]:
    """The TensorRT-engine LLM class and config classes, across 0.x and 1.x layouts."""
    try:
        import tensorrt_llm
    except ImportError as exc:
        raise BackendNotInstalled(INSTALL_HINT) from exc
    try:  # 1.x: tensorrt_llm.LLM is the PyTorch path; the engine path lives here
        from tensorrt_llm._tensorrt_engine import LLM
    except ImportError:  # 0.x: tensorrt_llm.LLM builds TensorRT engines
        from tensorrt_llm import LLM
    from tensorrt_llm import BuildConfig, SamplingParams
    from tensorrt_llm.llmapi import (
        CapacitySchedulerPolicy,
        ContextChunkingPolicy,
        ExtendedRuntimePerfKnobConfig,
        KvCacheConfig,
        QuantAlgo,
        QuantConfig,
        SchedulerConfig,
    )

    return {
        "module": tensorrt_llm,
        "LLM": LLM,
        "BuildConfig": BuildConfig,
        "SamplingParams": SamplingParams,
        "KvCacheConfig": KvCacheConfig,
        "ExtendedRuntimePerfKnobConfig": ExtendedRuntimePerfKnobConfig,
        "SchedulerConfig": SchedulerConfig,
        "CapacitySchedulerPolicy": CapacitySchedulerPolicy,
        "ContextChunkingPolicy": ContextChunkingPolicy,
        "QuantConfig": QuantConfig,
        "QuantAlgo": QuantAlgo,
    }


def _kv_cache_type(name: str) -> Any:
    try:
        from tensorrt_llm.bindings import KVCacheType
    except ImportError:
        return name
    return getattr(KVCacheType, name)


def materialize(kw: dict[str, Any], trt: dict[str, Any]) -> dict[str, Any]:
    """Turn the mapping's plain data into TensorRT-LLM objects (enum names -> members)."""
    out = dict(kw)
    if "build_config" in out:
        data = dict(out["build_config"])
        plugin = data.pop("plugin_config", {})
        if "kv_cache_type" in data:
            data["kv_cache_type"] = _kv_cache_type(data["kv_cache_type"])
        build = trt["BuildConfig"](**data)
        for key, value in plugin.items():
            setattr(build.plugin_config, key, value)
        out["build_config"] = build
    if "quant_config" in out:
        data = dict(out["quant_config"])
        for key in ("quant_algo", "kv_cache_quant_algo"):
            if key in data and isinstance(data[key], str):
                data[key] = getattr(trt["QuantAlgo"], data[key])
        out["quant_config"] = trt["QuantConfig"](**data)
    if "kv_cache_config" in out:
        out["kv_cache_config"] = trt["KvCacheConfig"](**out["kv_cache_config"])
    if "extended_runtime_perf_knob_config" in out:
        out["extended_runtime_perf_knob_config"] = trt["ExtendedRuntimePerfKnobConfig"](
            **out["extended_runtime_perf_knob_config"]
        )
    if "scheduler_config" in out:
        data = dict(out["scheduler_config"])
        for key, enum_name in (
            ("capacity_scheduler_policy", "CapacitySchedulerPolicy"),
            ("context_chunking_policy", "ContextChunkingPolicy"),
        ):
            if isinstance(data.get(key), str) and enum_name in trt:
                data[key] = getattr(trt[enum_name], data[key])
        out["scheduler_config"] = trt["SchedulerConfig"](**data)
    return out


class TensorRTBackend(InferenceBackend):
    name = "tensorrt"
    #: why peak device memory is null (torch's counters see only torch's allocator)
    memory_null_reason = (
        "TensorRT-LLM allocates device memory through its own runtime (engine, KV cache "
        "pool), in its executor's process; torch's counters in the harness see none of it"
    )

    def __init__(self, config, device, device_indices) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, device, device_indices)
        self.model_path: str | None = None
        #: seconds spent compiling the engine in this run (0.0 when reused from the cache)
        self.build_time_s: float | None = None
        self.engine_dir: Path | None = None
        self._llm: Any = None
        self._tokenizer: Any = None
        self._sampling: Any = None
        self._prefill_sampling: Any = None

    @classmethod
    def version(cls) -> dict[str, str]:
        for dist in ("tensorrt_llm", "tensorrt-llm"):
            try:
                return {"tensorrt_llm": importlib.metadata.version(dist)}
            except importlib.metadata.PackageNotFoundError:
                continue
        return {}

    def load(self) -> LoadInfo:
        trt = _import_trt()
        model = self._model_dir = self.model_path or model_directory(self.config)
        pin_visible_devices(self.device_indices)
        version = getattr(trt["module"], "__version__", "unknown")
        cache_root = Path(self.config.tensorrt.engine_cache_dir or default_engine_cache_dir())
        key = engine_cache_key(self.config, engine_version=version)
        self.engine_dir = cache_root / key
        kw = engine_kwargs(self.config, model_path=model)
        notes = [f"engine cache key {key} ({self.engine_dir})"]

        start = time.perf_counter()
        if (self.engine_dir / "config.json").exists():
            runtime = {k: v for k, v in kw.items() if k in RUNTIME_ARGS}
            runtime["model"] = str(self.engine_dir)
            self._llm = trt["LLM"](**materialize(runtime, trt))
            self.build_time_s = 0.0
            notes.append("engine reused from cache: build_time_s=0")
        else:
            self._llm = trt["LLM"](**materialize(kw, trt))
            self.build_time_s = time.perf_counter() - start
            self._save_engine()
            notes.append(f"engine built: build_time_s={self.build_time_s:.1f}")
        load_time = time.perf_counter() - start - (self.build_time_s or 0.0)

        self._tokenizer = self._llm.tokenizer
        self._sampling = trt["SamplingParams"](**sampling_kwargs(self.config))
        self._prefill_sampling = trt["SamplingParams"](
            **sampling_kwargs(self.config, max_tokens=1)
        )
        arch = engine_architecture(str(model))
        return LoadInfo(
            load_time_s=max(load_time, 0.0),
            num_parameters=arch.get("num_parameters"),
            architecture=arch,
            dtype=self.config.tensorrt.dtype,
            notes=notes,
        )

    def _save_engine(self) -> None:
        """Save the built engine next to its final name, then rename: readers never see half."""
        assert self.engine_dir is not None
        self.engine_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.engine_dir.with_name(f".{self.engine_dir.name}.tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        self._llm.save(str(tmp))
        try:
            tmp.rename(self.engine_dir)
        except OSError:  # another run saved the same engine first; keep theirs
            shutil.rmtree(tmp, ignore_errors=True)

    def token_space(self) -> tuple[int, set[int]]:
        cfg_file = Path(self._model_dir) / "config.json"
        vocab = json.loads(cfg_file.read_text())["vocab_size"] if cfg_file.is_file() else None
        return engine_token_space({"vocab_size": vocab}, self._tokenizer)

    def make_batches(self, prompts: list[Any]) -> list[Batch]:
        limit = self.config.workload.max_input_tokens
        requests = []
        ids_by_index: dict[int, list[int]] = {}
        for i, prompt in enumerate(prompts):
            ids = list(prompt) if isinstance(prompt, list) else list(
                self._tokenizer.encode(prompt))[:limit]
            requests.append(Request(index=i, prompt=prompt, input_tokens=len(ids)))
            ids_by_index[i] = ids
        return [
            Batch(requests=group, payload=[ids_by_index[r.index] for r in group])
            for group in group_requests(requests, self.config.workload)
        ]

    def generate(self, batch: Batch) -> BatchOutput:
        return asyncio.run(self._stream_batch(batch))

    async def _stream_batch(self, batch: Batch) -> BatchOutput:
        traffic = self.config.workload.traffic
        n = len(batch.payload)
        if traffic.mode == "poisson":
            assert traffic.rate is not None
            arrivals = poisson_arrivals(n, traffic.rate, traffic.seed)
        else:
            arrivals = [0.0] * n
        start = time.perf_counter()

        async def one(k: int, ids: list[int]) -> tuple[int, float | None, list[float]]:
            await asyncio.sleep(max(0.0, start + arrivals[k] - time.perf_counter()))
            submit = time.perf_counter()
            token_times: list[float] = []
            seen = 0
            stream = self._llm.generate_async(ids, self._sampling, streaming=True)
            async for out in stream:
                count = sum(len(c.token_ids) for c in out.outputs)
                if count > seen:
                    token_times.append(time.perf_counter())
                    seen = count
            ttft, gaps = latencies_from_token_times(submit, token_times)
            return seen, ttft, gaps

        results = await asyncio.gather(*(one(k, ids) for k, ids in enumerate(batch.payload)))
        e2e = time.perf_counter() - start
        per_request = [r[0] for r in results]
        return BatchOutput(
            input_tokens=batch.input_tokens,
            output_tokens=sum(per_request),
            per_request_output_tokens=per_request,
            e2e_s=e2e,
            ttft_s=[r[1] for r in results if r[1] is not None] or None,
            itl_s=[g for r in results for g in r[2]] or None,
        )

    def prefill(self, batch: Batch) -> int:
        """Prefill cost = generation with max_tokens=1 (documented approximation)."""
        self._llm.generate(batch.payload, self._prefill_sampling)
        return batch.input_tokens

    def synchronize(self) -> None:
        try:
            import torch
        except ImportError:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def unload(self) -> None:
        if self._llm is not None and hasattr(self._llm, "shutdown"):
            self._llm.shutdown()
        self._llm = None
