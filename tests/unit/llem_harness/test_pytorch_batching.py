"""Batching strategies and decoding kwargs of the PyTorch backend on the tiny model."""

from __future__ import annotations

import pytest

from llem_schema.config import ExperimentConfig

pytest.importorskip("torch")

from llem_harness.backends.pytorch import PyTorchBackend

PROMPTS = ["a" * n for n in (5, 40, 10, 30, 2, 20)]


def _backend(**cfg: object) -> PyTorchBackend:
    b = PyTorchBackend(ExperimentConfig.model_validate(cfg), "cpu", [])
    b.load()
    return b


def test_static_keeps_order_sorted_groups_by_length() -> None:
    b = _backend(workload={"batch_size": 2})
    static = b.make_batches(PROMPTS)
    assert [[r.index for r in x.requests] for x in static] == [[0, 1], [2, 3], [4, 5]]
    b.config.workload.batching = "sorted"
    sorted_b = b.make_batches(PROMPTS)
    lens = [[r.input_tokens for r in x.requests] for x in sorted_b]
    assert lens == sorted(lens) and all(a <= c for a, c in lens)


def test_dynamic_respects_token_budget() -> None:
    b = _backend(workload={"batching": "dynamic", "token_budget": 50})
    batches = b.make_batches(PROMPTS)
    for x in batches:
        longest = max(r.input_tokens for r in x.requests)
        assert len(x.requests) == 1 or len(x.requests) * longest <= 50
    assert sorted(r.index for x in batches for r in x.requests) == list(range(6))


def test_left_padding_and_generation_lengths() -> None:
    b = _backend(decoding={"max_new_tokens": 5}, workload={"batch_size": 3})
    batch = b.make_batches(PROMPTS[:3])[0]
    mask = batch.payload["attention_mask"]
    assert mask[:, -1].all() and not mask[0, 0]  # shorter prompt padded on the left
    out = b.generate(batch)
    assert out.per_request_output_tokens == [5, 5, 5]
    assert out.ttft_s and len(out.itl_s or []) == 4
    assert b.prefill(batch) == batch.input_tokens


def test_decoding_kwargs() -> None:
    b = _backend(decoding={"strategy": "sampling", "temperature": 0.7, "top_k": 5,
                           "max_new_tokens": 4}, extra={"no_repeat_ngram_size": 2})
    kw = b._gen_kwargs
    assert kw["do_sample"] and kw["temperature"] == 0.7 and kw["top_k"] == 5
    assert kw["min_new_tokens"] == 4  # ignore_eos -> fixed length
    assert kw["no_repeat_ngram_size"] == 2  # extra forwarded
    g = _backend(decoding={"strategy": "beam", "num_beams": 2, "max_new_tokens": 3})
    assert g._gen_kwargs["num_beams"] == 2 and not g._gen_kwargs["do_sample"]
    out = g.generate(g.make_batches(PROMPTS[:2])[0])
    assert out.per_request_output_tokens == [3, 3]
