"""Precedence CLI > file > preset > defaults, with provenance for `llem config show`."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.config import loader as config_loader
from llem_schema.errors import ConfigError


def test_precedence_and_provenance(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text(
        "preset: quick-test\nworkload:\n  batch_size: 3\ndecoding:\n  max_new_tokens: 20\n"
    )
    loaded = config_loader.load(f, {"decoding.max_new_tokens": 7})
    base = loaded.study.base
    assert base.decoding.max_new_tokens == 7  # cli beats file
    assert base.workload.batch_size == 3  # file beats preset (preset says 2)
    assert base.workload.num_prompts == 4  # preset beats default (16)
    assert base.decoding.strategy == "greedy"  # default
    prov = loaded.provenance
    assert prov["decoding.max_new_tokens"] == "cli"
    assert prov["workload.batch_size"] == "file"
    assert prov["workload.num_prompts"] == "preset:quick-test"
    assert prov["decoding.strategy"] == "default"


def test_cli_preset_overrides_file_preset(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("preset: quick-test\n")
    loaded = config_loader.load(f, preset="throughput")
    assert loaded.study.base.workload.batch_size == 32


def test_all_presets_are_valid() -> None:
    for name in config_loader.presets():
        config_loader.load(None, preset=name)


def test_study_detected_and_expanded(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "sweep:\n  workload.batch_size: [1, 2]\n  decoding.max_new_tokens: [4, 8, 16]\n"
        "study:\n  cycles: 2\n"
    )
    loaded = config_loader.load(f)
    assert loaded.is_study and loaded.study.n_experiments() == 6
    assert loaded.study.study.cycles == 2


def test_extra_is_opaque(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("extra:\n  output_scores: true\n")
    assert config_loader.load(f).study.base.extra == {"output_scores": True}


def test_error_names_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("measurement:\n  sample_interval_ms: 1\n")
    with pytest.raises(ConfigError) as exc:
        config_loader.load(f)
    assert str(f) in str(exc.value) and "measurement.sample_interval_ms" in str(exc.value)


def test_predecessor_flags_reach_their_fields_with_cli_provenance(tmp_path) -> None:
    """--cycles/--order/--fail-fast land in the study section, --dtype/--quantization in the
    chosen backend's section, --seed in decoding and workload (issue 17)."""
    from llem.cli.app import overrides
    from llem.config.loader import load

    f = tmp_path / "exp.yaml"
    f.write_text("backend: vllm\nmodel: /m\ndecoding: {strategy: sampling}\n")
    ld = load(f, overrides(cycles=3, order="shuffled", dtype="float16", quantization="fp8",
                           seed=7, dataset="synthetic", temperature=0.5, timeout=60.0,
                           fail_fast=True))
    s, b = ld.study, ld.study.base
    assert (s.study.cycles, s.study.order, s.study.max_failures) == (3, "shuffled", 1)
    assert (b.vllm.dtype, b.vllm.quantization, b.pytorch.dtype) == ("float16", "fp8", "auto")
    assert (b.decoding.seed, b.workload.seed, b.workload.dataset) == (7, 7, "synthetic")
    assert b.decoding.temperature == 0.5 and b.runtime.timeout_seconds == 60.0
    assert ld.is_study and ld.provenance["study.cycles"] == "cli"
    assert ld.provenance["vllm.dtype"] == "cli" and ld.provenance["backend"] == "file"
