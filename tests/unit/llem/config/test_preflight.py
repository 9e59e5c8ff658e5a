"""Bad input caught on the host before any run starts: one line naming the field, exit 2,
no traceback, no study directory left behind (issue 15)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import llem_cmd, subprocess_env

CASES = {
    "missing-model-path": ("model: /nonexistent/llama\n",
                           "model: /nonexistent/llama does not exist"),
    "unknown-builtin": ("model: builtin:nope\n", "unknown builtin 'nope'"),
    "dir-without-config": ("model: {tmp}/empty-model\n", "has no config.json"),
    "missing-dataset": ("workload: {dataset: {tmp}/missing.jsonl}\n",
                        "workload.dataset: file not found"),
    "past-positions": ("decoding: {max_new_tokens: 4000}\n", "exceed the model's 2048 positions"),
    "bool-batch-size": ("workload: {batch_size: true}\n", "boolean true"),
    "registry-credentials": ("runtime: {registry: 'me:s3cr3t@reg.example:5000'}\n",
                             "runtime.registry 'reg.example:5000': credentials in a registry"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_before_any_run(tmp_path: Path, name: str) -> None:
    yaml_text, expect = CASES[name]
    (tmp_path / "empty-model").mkdir()
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml_text.replace("{tmp}", str(tmp_path)))
    results = tmp_path / "results"
    p = subprocess.run([*llem_cmd(), "run", str(cfg), "--runtime", "local",
                        "--results-dir", str(results)],
                       capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert expect in lines[0], lines[0]
    assert "s3cr3t" not in p.stderr + p.stdout
    assert not results.exists() or not any(results.iterdir())


def test_host_and_harness_agree_on_builtin_models() -> None:
    from llem_harness.backends.builtin_models import SHAPES
    from llem_schema.builtins import BUILTIN_MODELS

    assert set(SHAPES) == set(BUILTIN_MODELS)
    for name, facts in BUILTIN_MODELS.items():
        assert SHAPES[name]["max_position_embeddings"] == facts["max_position_embeddings"]
