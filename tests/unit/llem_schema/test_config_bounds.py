"""Values a config may not hold (issue 15): infinity and NaN in what a user writes, numbers
past what an engine takes, GPU ids that select nothing, malformed carbon regions, and
``extra:`` keys the pytorch backend would let override a first-class field unseen."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from llem_schema.compat import PYTORCH_OWNED_KWARGS, validate_backend_config
from llem_schema.config import MAX_PROMPTS, MAX_SEED, ExperimentConfig
from llem_schema.result import GPUInfo
from llem_schema.study import StudyExecution


def _cfg(**kw: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(kw)


@pytest.mark.parametrize(("section", "field"), [
    ("measurement", "min_window_seconds"), ("runtime", "timeout_seconds"),
    ("decoding", "temperature"), ("vllm", "gpu_memory_utilization"),
])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_config_floats_are_finite(section: str, field: str, value: float) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        _cfg(**{section: {field: value}})
    with pytest.raises(ValidationError, match="finite number"):
        StudyExecution(cooldown_seconds=value)


def test_results_still_read_what_was_measured() -> None:
    """Only configs refuse infinity: a measured value is never refused on read."""
    assert math.isinf(GPUInfo(index=0, name="x", power_limit_w=math.inf).power_limit_w or 0)


def test_upper_bounds() -> None:
    assert _cfg(workload={"num_prompts": MAX_PROMPTS}).workload.num_prompts == MAX_PROMPTS
    for section, field, value in (("workload", "num_prompts", MAX_PROMPTS + 1),
                                  ("workload", "batch_size", 10**20),
                                  ("decoding", "max_new_tokens", 2**31),
                                  ("decoding", "seed", MAX_SEED + 1),
                                  ("workload", "seed", -1)):
        with pytest.raises(ValidationError, match=f"{section}.{field}|{field}"):
            _cfg(**{section: {field: value}})


@pytest.mark.parametrize("gpus", [[-1], [""], ["GPU 1"], ["0,1"]])
def test_gpu_ids_that_select_nothing_are_refused(gpus: list[int | str]) -> None:
    with pytest.raises(ValidationError, match="runtime.gpus"):
        _cfg(runtime={"gpus": gpus})
    with pytest.raises(ValidationError, match="gpus"):
        StudyExecution(gpus=gpus)


def test_gpu_ids_that_can_exist_pass() -> None:
    assert _cfg(runtime={"gpus": [0, "GPU-1a2b", "MIG-3c4d"]}).runtime.gpus[2] == "MIG-3c4d"


@pytest.mark.parametrize("region", ["FRA", "usa", "europe-west1", "gcp:europe-west1",
                                    "aws:us-east-1"])
def test_carbon_regions_of_the_known_shapes_pass(region: str) -> None:
    assert _cfg(measurement={"carbon_region": region}).measurement.carbon_region == region


@pytest.mark.parametrize("region", ["", "France!!", "gcp:", "Europe West", "FRANCE"])
def test_carbon_regions_of_no_known_shape_are_refused(region: str) -> None:
    with pytest.raises(ValidationError, match="measurement.carbon_region"):
        _cfg(measurement={"carbon_region": region})


def test_pytorch_extra_keys() -> None:
    assert validate_backend_config(_cfg(extra={"no_repeat_ngram_size": 2})) == []
    for key, field in PYTORCH_OWNED_KWARGS.items():
        (err,) = validate_backend_config(_cfg(extra={key: 1}))
        assert err.startswith(f"extra.{key}: set {field} instead"), err
    assert validate_backend_config(_cfg(extra={"sampling": {}}))[0].startswith("extra.sampling")
    assert "not a generate() keyword" in validate_backend_config(_cfg(extra={"a b": 1}))[0]
    # the engines take their own keys: vllm's extra goes to the engine, not to generate()
    assert validate_backend_config(_cfg(backend="vllm", extra={"max_num_seqs": 8})) == []


def test_pytorch_owned_kwargs_are_the_ones_the_backend_sets() -> None:
    """Every generate() argument the pytorch backend derives from a first-class field is in
    the table (else an extra: key could override it unseen)."""
    from llem_harness.backends.pytorch import PyTorchBackend

    class Tok:
        pad_token_id = 0

    seen: set[str] = set()
    for strategy in ("greedy", "sampling", "beam"):
        cfg = _cfg(decoding={"strategy": strategy,
                             "num_beams": 2 if strategy == "beam" else 1})
        backend = PyTorchBackend.__new__(PyTorchBackend)
        backend.config, backend.tokenizer = cfg, Tok()
        seen |= set(backend._generation_kwargs())
    assert seen == set(PYTORCH_OWNED_KWARGS)
