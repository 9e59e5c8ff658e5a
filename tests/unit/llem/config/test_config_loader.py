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
