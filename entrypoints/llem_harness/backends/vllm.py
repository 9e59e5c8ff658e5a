"""vLLM backend: offline ``vllm.LLM`` + ``SamplingParams``; Poisson traffic via the async engine.

Only the harness measures (energy windows, warmup, statistics); this class loads the engine
and runs batches. Arguments come from :mod:`llem_harness.backends.vllm_mapping` (pure,
tested without a GPU). vLLM is imported inside :meth:`VLLMBackend.load` so that importing
this module never needs vLLM.

Timing sources:
- offline (``workload.traffic.mode: offline``): ``LLM.generate`` on the whole batch;
  TTFT per request from ``RequestOutput.metrics`` (``first_token_latency`` in vLLM V1,
  ``first_token_time - arrival_time`` in V0); vLLM offline exposes only first/last token
  timestamps, so ``itl_s`` holds each request's mean inter-token gap (noted in LoadInfo).
- poisson: requests are submitted to ``AsyncLLMEngine`` at seeded exponential arrival
  times and streamed, so every token arrival is timed: true TTFT and ITL.
- prefill: generation with ``max_tokens=1`` (vLLM has no prefill-only call); it includes
  the sampling of one token, which is negligible next to the prefill forward pass.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import time
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
from llem_harness.backends.vllm_mapping import engine_kwargs, sampling_kwargs

INSTALL_HINT = (
    "the vllm backend needs the 'vllm' package: run it in the llenergymeasure/vllm image "
    "(llem picks it for backend: vllm) or `pip install 'llenergymeasure[vllm]'` on a CUDA host"
)


def _request_ttft(metrics: Any) -> float | None:
    """TTFT from RequestOutput.metrics across vLLM versions (None when not recorded)."""
    if metrics is None:
        return None
    latency = getattr(metrics, "first_token_latency", None)  # V1 RequestStateStats
    if latency:
        return float(latency)
    first = getattr(metrics, "first_token_time", None)  # V0 RequestMetrics
    arrival = getattr(metrics, "arrival_time", None)
    if first is not None and arrival is not None:
        return float(first - arrival)
    return None


def _request_mean_itl(metrics: Any, generated: int) -> float | None:
    """Mean gap between output tokens from first/last token timestamps."""
    if metrics is None or generated < 2:
        return None
    first = getattr(metrics, "first_token_ts", None) or getattr(metrics, "first_token_time", None)
    last = getattr(metrics, "last_token_ts", None) or getattr(metrics, "last_token_time", None)
    if not first or not last or last <= first:
        return None
    return float(last - first) / (generated - 1)


def engine_process_env() -> None:
    """How vLLM starts its engine process, set before vLLM is imported.

    * ``spawn``, not fork: by the time the engine starts, this process has run torch CPU
      work (a builtin model written to disk, tokenisation), so OpenMP and tokenizer thread
      pools exist, and a forked EngineCore inherits their locks. On the H100 the forked
      engine stopped after its distributed init and never became ready (8 minutes), while
      the same engine from a clean process was ready in 136 s. The harness's entry points
      are guarded by ``if __name__ == "__main__"``, which spawn needs.
    * vLLM's log to stderr: the runtimes keep the harness's stdout for nothing and its
      stderr for the run's log, so an engine that stalls says where.
    A user's own setting of either variable wins.
    """
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


class VLLMBackend(InferenceBackend):
    name = "vllm"
    #: why peak device memory is null (torch's counters are per process)
    memory_null_reason = (
        "vLLM allocates device memory in its EngineCore process; torch's counters in the "
        "harness process see none of it (vLLM reserves vllm.gpu_memory_utilization of the "
        "GPU, or vllm.kv_cache_memory_bytes of KV cache, up front)"
    )

    def __init__(self, config, device, device_indices) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, device, device_indices)
        #: local path of the model; the harness may set it (cache entry, materialised builtin)
        self.model_path: str | None = None
        self._llm: Any = None
        self._async_engine: Any = None
        self._tokenizer: Any = None
        self._sampling: Any = None
        self._prefill_sampling: Any = None
        self._vllm: Any = None
        self._model_dir: str | None = None
        self._arch: dict[str, Any] | None = None
        #: one event loop for the async engine's whole life: vLLM's AsyncLLM binds its
        #: output handler to the loop of its first request, so a new loop per batch
        #: (asyncio.run) would leave later requests waiting on a closed loop
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def version(cls) -> dict[str, str]:
        try:
            return {"vllm": importlib.metadata.version("vllm")}
        except importlib.metadata.PackageNotFoundError:
            return {}

    @property
    def _poisson(self) -> bool:
        return self.config.workload.traffic.mode == "poisson"

    def load(self) -> LoadInfo:
        engine_process_env()
        try:
            import vllm
        except ImportError as exc:
            raise BackendNotInstalled(INSTALL_HINT) from exc
        model = self._model_dir = self.model_path or model_directory(self.config)
        self._arch = None
        pin_visible_devices(self.device_indices)
        self._vllm = vllm
        kw = engine_kwargs(self.config, model_path=model)
        start = time.perf_counter()
        if self._poisson:
            self._loop = asyncio.new_event_loop()
            self._async_engine = self._run(self._start_async(vllm, kw))
            self._tokenizer = self._get_async_tokenizer()
        else:
            self._llm = vllm.LLM(**kw)
            self._tokenizer = self._llm.get_tokenizer()
        load_time = time.perf_counter() - start
        self._sampling = vllm.SamplingParams(**sampling_kwargs(self.config))
        self._prefill_sampling = vllm.SamplingParams(**sampling_kwargs(self.config, max_tokens=1))
        arch = self._architecture()
        return LoadInfo(
            load_time_s=load_time,
            num_parameters=arch.get("num_parameters"),
            architecture=arch,
            dtype=self._model_dtype(),
            notes=[
                "engine arguments: " + ", ".join(f"{k}={v!r}" for k, v in sorted(kw.items())),
                "load_time_s includes vLLM profiling, KV cache allocation and CUDA graph capture",
                "offline itl_s: per-request mean inter-token gap (vLLM offline records only "
                "first/last token times)"
                if not self._poisson
                else "poisson: TTFT/ITL from streamed token arrival times",
            ],
        )

    @staticmethod
    async def _start_async(vllm: Any, kw: dict[str, Any]) -> Any:
        """Built inside the engine's loop: the async engine may start tasks on it."""
        return vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**kw))

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        return self._loop.run_until_complete(coro)

    def _get_async_tokenizer(self) -> Any:
        tok = self._async_engine.get_tokenizer()
        if asyncio.iscoroutine(tok):  # AsyncLLM.get_tokenizer is a coroutine in vLLM V1
            tok = self._run(tok)
        return tok

    def _model_config(self) -> Any:
        engine = self._llm.llm_engine if self._llm is not None else self._async_engine
        return getattr(engine, "model_config", None)

    def _architecture(self) -> dict[str, Any]:
        """Shape and parameter counts for the analytic FLOPs formula (the engine's process
        holds the model, so nothing here can count its ops): the model directory's
        config.json and safetensors headers, else the config vLLM loaded."""
        if self._arch is None:
            hf = getattr(self._model_config(), "hf_config", None)
            self._arch = engine_architecture(self._model_dir or "", hf)
        return self._arch

    def _model_dtype(self) -> str | None:
        model_config = self._model_config()
        dtype = getattr(model_config, "dtype", None)
        return str(dtype).replace("torch.", "") if dtype is not None else None

    def token_space(self) -> tuple[int, set[int]]:
        return engine_token_space(self._architecture(), self._tokenizer)

    def make_batches(self, prompts: list[Any]) -> list[Batch]:
        limit = self.config.workload.max_input_tokens
        requests = []
        payload_by_index: dict[int, dict[str, list[int]]] = {}
        for i, prompt in enumerate(prompts):
            ids = list(prompt) if isinstance(prompt, list) else list(
                self._tokenizer.encode(prompt))[:limit]
            requests.append(Request(index=i, prompt=prompt, input_tokens=len(ids)))
            payload_by_index[i] = {"prompt_token_ids": ids}  # vllm TokensPrompt
        return [
            Batch(requests=group, payload=[payload_by_index[r.index] for r in group])
            for group in group_requests(requests, self.config.workload)
        ]

    def schedules_arrivals(self) -> bool:
        return self._poisson

    def generate(self, batch: Batch) -> BatchOutput:
        if self._poisson:
            return self._run(self._generate_poisson(batch))
        start = time.perf_counter()
        outputs = self._llm.generate(batch.payload, self._sampling, use_tqdm=False)
        e2e = time.perf_counter() - start
        per_request = [sum(len(c.token_ids) for c in out.outputs) for out in outputs]
        ttfts = [_request_ttft(out.metrics) for out in outputs]
        itls = [
            _request_mean_itl(out.metrics, len(out.outputs[0].token_ids)) for out in outputs
        ]
        return BatchOutput(
            input_tokens=batch.input_tokens,
            output_tokens=sum(per_request),
            per_request_output_tokens=per_request,
            e2e_s=e2e,
            ttft_s=[t for t in ttfts if t is not None] or None,
            itl_s=[t for t in itls if t is not None] or None,
        )

    async def _generate_poisson(self, batch: Batch) -> BatchOutput:
        """Submit the batch's requests at Poisson arrival times through the async engine."""
        traffic = self.config.workload.traffic
        assert traffic.rate is not None  # schema guarantees it for poisson
        arrivals = poisson_arrivals(len(batch.payload), traffic.rate, traffic.seed)
        start = time.perf_counter()

        async def one(k: int, prompt: dict[str, list[int]]) -> tuple[int, float | None, list]:
            await asyncio.sleep(max(0.0, start + arrivals[k] - time.perf_counter()))
            submit = time.perf_counter()
            token_times: list[float] = []
            seen = 0
            final = None
            request_id = f"llem-{batch.requests[k].index}-{k}-{submit:.6f}"
            async for out in self._async_engine.generate(prompt, self._sampling, request_id):
                count = sum(len(c.token_ids) for c in out.outputs)
                if count > seen:
                    token_times.append(time.perf_counter())
                    seen = count
                final = out
            ttft, gaps = latencies_from_token_times(submit, token_times)
            generated = sum(len(c.token_ids) for c in final.outputs) if final is not None else 0
            return generated, ttft, gaps

        results = await asyncio.gather(*(one(k, p) for k, p in enumerate(batch.payload)))
        e2e = time.perf_counter() - start
        per_request = [r[0] for r in results]
        ttfts = [r[1] for r in results if r[1] is not None]
        gaps = [g for r in results for g in r[2]]
        return BatchOutput(
            input_tokens=batch.input_tokens,
            output_tokens=sum(per_request),
            per_request_output_tokens=per_request,
            e2e_s=e2e,
            ttft_s=ttfts or None,
            itl_s=gaps or None,
        )

    def prefill(self, batch: Batch) -> int:
        """Prefill cost = generation with max_tokens=1 (documented approximation)."""
        if self._poisson:
            async def run() -> None:
                await asyncio.gather(*(
                    self._drain(p, f"llem-prefill-{k}-{time.perf_counter():.6f}")
                    for k, p in enumerate(batch.payload)
                ))
            self._run(run())
        else:
            self._llm.generate(batch.payload, self._prefill_sampling, use_tqdm=False)
        return batch.input_tokens

    async def _drain(self, prompt: dict[str, list[int]], request_id: str) -> None:
        async for _ in self._async_engine.generate(prompt, self._prefill_sampling, request_id):
            pass

    def synchronize(self) -> None:
        """``LLM.generate`` returns after the engine finished its requests. No CUDA call
        here: the engine's GPU work runs in its own process, and a CUDA context in the
        harness process would only take GPU memory."""

    def unload(self) -> None:
        engine = self._async_engine
        if engine is not None and hasattr(engine, "shutdown"):
            engine.shutdown()
        if self._loop is not None:
            self._loop.close()
        self._llm = None
        self._async_engine = None
        self._loop = None
