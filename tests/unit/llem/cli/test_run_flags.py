"""The predecessor's flags (issue 17 item 2) through `llem run`'s own parser: each reaches
its config path with CLI provenance, and a dry run shows the study and engine they make.
(tests/unit/llem/config/test_config_loader.py checks the overrides -> config step alone.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llem.cli import app
from llem.study import launch
from tests.conftest import llem_cmd, subprocess_env

FLAGS = ["--cycles", "3", "--order", "shuffled", "--dtype", "float16", "--dataset",
         "synthetic", "-n", "6", "--seed", "7", "--temperature", "0.5", "--quantization",
         "fp8", "--fail-fast", "--timeout", "60"]


def test_every_flag_reaches_its_field_with_cli_provenance(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "exp.yaml"
    f.write_text("backend: vllm\nmodel: /m\nworkload: {num_prompts: 2}\n"
                 "decoding: {strategy: sampling}\n")
    seen = {}
    real = launch.load_config

    def capture(path, preset, overrides):
        seen["loaded"] = real(path, preset, overrides)
        raise SystemExit(0)

    monkeypatch.setattr(launch, "load_config", capture)
    res = CliRunner().invoke(app, ["run", str(f), *FLAGS, "--dry-run"])
    assert res.exit_code == 0, res.output
    ld = seen["loaded"]
    s, b = ld.study.study, ld.study.base
    assert (s.cycles, s.order, s.max_failures) == (3, "shuffled", 1)
    assert (b.vllm.dtype, b.vllm.quantization) == ("float16", "fp8")
    assert (b.workload.dataset, b.workload.num_prompts) == ("synthetic", 6)  # flag > file
    assert (b.decoding.seed, b.workload.seed, b.decoding.temperature) == (7, 7, 0.5)
    assert b.runtime.timeout_seconds == 60.0
    for path in ("study.cycles", "study.order", "study.max_failures", "vllm.dtype",
                 "vllm.quantization", "workload.dataset", "workload.num_prompts",
                 "workload.seed", "decoding.seed", "decoding.temperature",
                 "runtime.timeout_seconds"):
        assert ld.provenance[path] == "cli", path
    assert ld.provenance["backend"] == "file"


def test_dry_run_shows_what_the_flags_made(tmp_path: Path) -> None:
    f = tmp_path / "exp.yaml"
    f.write_text("backend: vllm\nmodel: /models/llama\ndecoding: {strategy: sampling}\n")
    p = subprocess.run([*llem_cmd(), "run", str(f), *FLAGS, "--dry-run"], capture_output=True,
                       text=True, env=subprocess_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert "x 3 cycle(s) = 3 run(s), order shuffled" in p.stdout
    for arg in ('"dtype": "float16"', '"quantization": "fp8"', '"seed": 7'):
        assert arg in p.stdout, arg
