"""The contract: validation rules, hashes, null-with-reason, JSON Schema drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from llem_schema.config import ExperimentConfig
from llem_schema.jsonschema_export import schema_documents
from llem_schema.result import EnergyMetrics, PhaseMetrics

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"


def test_committed_json_schemas_match_models() -> None:
    docs = schema_documents()
    for fname, text in docs.items():
        committed = (SCHEMA_DIR / fname).read_text()
        assert json.loads(committed) == json.loads(text), (
            f"{fname} drifted from llem_schema; run `make schemas` and commit"
        )
    assert sorted(docs) == sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))


def test_unknown_key_forbidden_but_extra_free() -> None:
    with pytest.raises(ValidationError):
        ExperimentConfig.model_validate({"workload": {"batchsize": 2}})
    cfg = ExperimentConfig.model_validate({"extra": {"anything": {"goes": 1}}})
    assert cfg.extra == {"anything": {"goes": 1}}


@pytest.mark.parametrize(
    "data",
    [
        {"workload": {"batch_size": 0}},
        {"backend": "onnx"},
        {"decoding": {"strategy": "beam", "num_beams": 1}},
        {"decoding": {"min_new_tokens": 10, "max_new_tokens": 5}},
        {"workload": {"batching": "dynamic"}},
        {"workload": {"traffic": {"mode": "poisson"}}},
        {"pytorch": {"compile": True}},
        {"model": "  "},
    ],
)
def test_invalid_configs_rejected(data: dict) -> None:
    with pytest.raises(ValidationError):
        ExperimentConfig.model_validate(data)


def test_config_hash_ignores_name_only() -> None:
    a = ExperimentConfig(name="a")
    b = ExperimentConfig(name="b")
    c = ExperimentConfig.model_validate({"workload": {"batch_size": 8}})
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != c.config_hash()


def test_null_metric_requires_reason() -> None:
    with pytest.raises(ValidationError, match="without a reason"):
        PhaseMetrics(tokens=3, time_s=None)
    ok = PhaseMetrics.unavailable("no GPU", tokens=3)
    assert ok.tokens == 3 and ok.energy_j is None and ok.null_reasons["energy_j"] == "no GPU"
    e = EnergyMetrics.unavailable("CPU-only host")
    assert set(e.null_reasons) >= {"total_j", "per_output_token_j"}


@pytest.mark.parametrize("section, field", [("workload", "batch_size"),
                                            ("workload", "num_prompts"),
                                            ("measurement", "min_window_seconds"),
                                            ("decoding", "max_new_tokens")])
def test_a_boolean_is_never_a_number(section: str, field: str) -> None:
    from pydantic import ValidationError

    from llem_schema.config import ExperimentConfig

    with pytest.raises(ValidationError, match=f"{section}.{field}[\\s\\S]*boolean true"):
        ExperimentConfig.model_validate({section: {field: True}})
    assert ExperimentConfig.model_validate({"measurement": {"flops": False}}).measurement.flops \
        is False


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_a_temperature_without_sampling_is_refused_like_num_beams(strategy: str) -> None:
    """Issue 17: greedy (and beam) decoding never sample, so decoding.temperature 0.5 was
    dropped silently (the dry run showed 0.0); now it is refused, naming the field and the
    fix, as num_beams without beam is."""
    beams = {"num_beams": 2} if strategy == "beam" else {}
    with pytest.raises(ValidationError) as exc:
        ExperimentConfig.model_validate(
            {"decoding": {"strategy": strategy, "temperature": 0.5, **beams}})
    err = exc.value.errors()[0]
    assert err["loc"] == ("decoding", "temperature")
    assert f"no effect with {strategy} decoding" in err["msg"]
    assert "set decoding.strategy: sampling" in err["msg"]
    sampled = ExperimentConfig.model_validate(
        {"decoding": {"strategy": "sampling", "temperature": 0.5}})
    assert sampled.decoding.temperature == 0.5
    # the default (1.0) and 0.0 claim nothing; results written before keep loading
    for t in (0.0, 1.0):
        cfg = ExperimentConfig.model_validate(
            {"decoding": {"strategy": strategy, "temperature": t, **beams}})
        assert cfg.decoding.temperature == t
