"""The real harness on the embedded model, through the real local runtime."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from llem.config import loader as config_loader
from llem.study.rundir import read_result
from llem.study.runner import run_study
from llem_schema.exit_codes import ExitCode
from llem_schema.runspec import RunSpec
from llem_schema.version import SCHEMA_VERSION
from tests.conftest import llem_cmd, quick_overrides, subprocess_env

REPO = Path(__file__).resolve().parents[3]
RESULT_SCHEMA = json.loads((REPO / "schemas/json/result.v1.schema.json").read_text())


def _only_result(results: Path) -> Path:
    found = list(results.rglob("result.json"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("results")
    loaded = config_loader.load(None, quick_overrides())
    assert run_study(loaded, results_dir=results, quiet=True) == 0
    return _only_result(results)


def test_result_validates_against_committed_json_schema(quick_result: Path) -> None:
    jsonschema.validate(json.loads(quick_result.read_text()), RESULT_SCHEMA)


def test_result_content_is_measured_not_made_up(quick_result: Path) -> None:
    r = read_result(quick_result)
    assert r.schema_version == SCHEMA_VERSION
    assert r.throughput.output_tokens == 4 * 8  # ignore_eos: exactly max_new_tokens each
    assert r.throughput.output_tokens_per_s and r.throughput.output_tokens_per_s > 0
    assert r.latency.ttft and r.latency.ttft.n == 4
    assert r.latency.itl and r.latency.itl.n > 0 and r.latency.itl.p50 > 0
    assert r.flops.method in ("flop_counter", "calflops", "architecture") and r.flops.total
    assert r.flops.total > 0
    assert r.environment.device == "cpu" and r.environment.packages["torch"]
    # no GPU, no readable RAPL here: energy is null WITH a reason, never 0
    if r.energy.method is None:
        assert r.energy.total_j is None and r.energy.null_reasons["total_j"]
    assert r.prefill.tokens == r.throughput.input_tokens // r.setup.measured_passes
    assert r.prefill.time_s
    # one-pass windows (min_window_seconds 0): on a busy machine the prefill pass can outlast
    # the whole generate; the split is then declared invalid, never made up
    assert (r.decode.time_s and r.decode.time_s > 0) or (
        r.decode.time_s is None and any("decode split invalid" in w for w in r.warnings)
        and r.decode.null_reasons.get("time_s"))
    assert r.setup.load_time_s > 0 and r.warmup.runs == 1
    # where each value came from travels with the result
    assert r.config_provenance["decoding.strategy"] == "default"
    assert set(r.config_provenance.values()) <= {"default", "file", "cli", "sweep"} | {
        v for v in r.config_provenance.values() if v.startswith("preset:")}


def test_run_dir_layout(quick_result: Path) -> None:
    run_dir = quick_result.parent
    assert run_dir.name == "cycle-0"
    names = {p.name for p in run_dir.iterdir()}
    assert {"experiment.json", "result.json", "harness.log", "state.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    manifest = json.loads((run_dir.parents[1] / "manifest.json").read_text())
    assert [r["state"] for r in manifest["runs"]] == ["done"]


def _harness(run_dir: Path) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "llem_harness", str(run_dir)],
                          capture_output=True, text=True, timeout=120, env=subprocess_env())


def _spec_dir(tmp_path: Path, **over: object) -> Path:
    data = quick_overrides() | over
    cfg = config_loader.load(None, data).study.base
    spec = RunSpec(experiment_id="e", run_id="r", config=cfg, config_hash=cfg.config_hash())
    (tmp_path / "experiment.json").write_text(spec.model_dump_json())
    return tmp_path


def test_harness_missing_model_exit_code(tmp_path: Path) -> None:
    p = _harness(_spec_dir(tmp_path, model=str(tmp_path / "no-such-model")))
    assert p.returncode == ExitCode.MODEL_NOT_FOUND, p.stderr[-2000:]
    assert not (tmp_path / "result.json").exists()


def test_harness_missing_backend_exit_code(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm installed")
    except ImportError:
        pass
    p = _harness(_spec_dir(tmp_path, backend="vllm"))
    assert p.returncode == ExitCode.BACKEND_NOT_INSTALLED, p.stderr[-2000:]


def test_harness_bad_experiment_json(tmp_path: Path) -> None:
    (tmp_path / "experiment.json").write_text('{"schema_version": "1.0", "config": {}}')
    assert _harness(tmp_path).returncode == ExitCode.BAD_CONFIG


def test_cli_run_prints_table_and_result(tmp_path: Path) -> None:
    cfg = tmp_path / "q.yaml"
    cfg.write_text(
        "name: q\nworkload: {num_prompts: 2, batch_size: 2}\ndecoding: {max_new_tokens: 4}\n"
        "measurement: {baseline_seconds: 0, warmup_max_runs: 1, warmup_min_runs: 0, "
        "min_window_seconds: 0}\n"
    )
    p = subprocess.run(
        llem_cmd() + ["run", str(cfg), "--runtime", "local", "--results-dir",
                      str(tmp_path / "res"), "-q"],
        capture_output=True, text=True, timeout=180,
        env=subprocess_env() | {"HF_TOKEN": "hf_SECRET_must_not_leak"},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "throughput" in p.stdout and "tok/s" in p.stdout
    # the token reaches the harness by environment only: never in output or any file
    assert "hf_SECRET" not in p.stdout + p.stderr
    for f in (tmp_path / "res").rglob("*"):
        if f.is_file():
            assert b"hf_SECRET" not in f.read_bytes(), f
    jsonschema.validate(json.loads(_only_result(tmp_path / "res").read_text()), RESULT_SCHEMA)
