from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import llem_cmd, subprocess_env

REPO = Path(__file__).resolve().parents[4]


def _dry(path: Path) -> str:
    p = subprocess.run(llem_cmd() + ["run", str(path), "--dry-run"], capture_output=True,
                       text=True, env=subprocess_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_quickstart_dry_run_lists_one() -> None:
    assert "1 experiments" in _dry(REPO / "examples" / "quickstart.yaml")


def test_sweep_dry_run_lists_nine() -> None:
    out = _dry(REPO / "examples" / "sweep.yaml")
    assert "9 experiments" in out and "x 5 cycle(s) = 45 run(s)" in out


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    subprocess.run(llem_cmd() + ["run", str(REPO / "examples" / "sweep.yaml"), "--dry-run",
                                 "--results-dir", str(tmp_path / "r")],
                   check=True, capture_output=True, env=subprocess_env(), timeout=60)
    assert not (tmp_path / "r").exists()


def test_vllm_dry_run_prints_engine_args(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("backend: vllm\nmodel: /models/llama\nvllm: {gpu_memory_utilization: 0.8}\n")
    out = _dry(f)
    assert "vllm engine arguments" in out and '"gpu_memory_utilization": 0.8' in out


def test_parallelism_beyond_listed_gpus_fails_validation(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("backend: tensorrt\nmodel: /m\nruntime: {gpus: [0]}\n"
                 "tensorrt: {tensor_parallel_size: 2}\n")
    p = subprocess.run([*llem_cmd(), "run", str(f), "--dry-run"], capture_output=True,
                       text=True, env=subprocess_env(), timeout=60)
    assert p.returncode == 2 and "runtime.gpus lists 1" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
