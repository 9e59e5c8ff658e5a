"""The Python API takes a config as a YAML path (str or Path), a mapping or an
ExperimentConfig (issue 17 item 3), and all four resolve to the same experiment; a study
given as a path is refused by run_experiment with the CLI's one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

import llem
from llem.api import _loaded
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError

DATA = {"name": "api-in", "model": "builtin:tiny-llama", "workload": {"batch_size": 3}}


def test_path_mapping_and_config_object_resolve_alike(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    f.write_text("name: api-in\nmodel: builtin:tiny-llama\nworkload: {batch_size: 3}\n")
    forms = [f, str(f), dict(DATA), ExperimentConfig.model_validate(DATA)]
    loaded = [_loaded(c, "local", {"workload.num_prompts": 4}) for c in forms]
    hashes = {ld.study.base.config_hash() for ld in loaded}
    assert len(hashes) == 1 and not any(ld.is_study for ld in loaded)
    base = loaded[0].study.base
    assert (base.workload.batch_size, base.workload.num_prompts) == (3, 4)
    assert base.runtime.runtime == "local"
    assert loaded[0].provenance["workload.num_prompts"] == "cli"


def test_a_study_file_is_refused_by_run_experiment(tmp_path: Path) -> None:
    f = tmp_path / "study.yaml"
    f.write_text("model: builtin:tiny-llama\nsweep: {workload.batch_size: [1, 2]}\n")
    with pytest.raises(ConfigError, match="use llem.run_study"):
        llem.run_experiment(f, tmp_path / "results")
    assert not (tmp_path / "results").exists()
