"""A tiny-model study through a real Slurm (``.ci/slurm-setup.sh``: single node, CPU only).

Skipped when no slurmctld answers. Every array task runs ``llem run-one`` with the local
runtime in this same Python environment; the harness is the real one, wrapped by
tests/fixtures/fake_harness.py in pass-through mode (LLEM_FAKE_REAL) only to count
executions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "fixtures" / "fake_harness.py"
sys.path[:0] = [str(REPO / p) for p in ("launcher", "entrypoints", "schemas")]

from llem.config.loader import LoadedConfig  # noqa: E402
from llem.executors import slurm  # noqa: E402
from llem.study import manifest as mf  # noqa: E402
from llem.study.rundir import read_result  # noqa: E402
from llem_schema.study import StudyConfig  # noqa: E402

ok, why = slurm.available()
if not ok:
    pytest.skip(f"no Slurm here: {why}", allow_module_level=True)


def tiny_study(name: str) -> LoadedConfig:
    study = StudyConfig.model_validate({
        "name": name,
        "base": {
            "model": "builtin:tiny-llama",
            "workload": {"num_prompts": 2, "batch_size": 2},
            "decoding": {"max_new_tokens": 4},
            "measurement": {"baseline_seconds": 0, "warmup_max_runs": 1,
                            "warmup_min_runs": 0, "min_window_seconds": 0},
            "runtime": {"runtime": "local"},
        },
        "sweep": {"workload.batch_size": [1, 2, 4]},
        "study": {"cycles": 2, "order": "interleaved"},
    })
    return LoadedConfig(study=study, is_study=True, source=f"{name}.yaml")


@pytest.fixture
def slurm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    counter = tmp_path / "count.log"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        str(REPO / p) for p in ("launcher", "entrypoints", "schemas")))
    monkeypatch.setenv("LLEM_FAKE_COUNTER", str(counter))
    monkeypatch.setenv("LLEM_FAKE_REAL", "1")
    monkeypatch.setenv("LLEM_FAKE_PYTHON", sys.executable)
    monkeypatch.setenv("LLEM_HARNESS_PYTHON", str(FAKE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return counter


def shape(study_dir: Path) -> dict:
    """What must match between executors: runs, configs and the result's structure."""
    out = {}
    for r in mf.load_manifest(study_dir).runs:
        res = read_result(study_dir / r.run_dir)
        data = json.loads((study_dir / r.run_dir / "result.json").read_text())
        out[r.run_dir] = (res.config_hash, res.cycle, sorted(data),
                          sorted(data["energy"]), sorted(data["throughput"]))
    return out


def test_slurm_study_completes_and_matches_local(tmp_path: Path, slurm_env: Path) -> None:
    import re

    import yaml

    from llem.study.runner import run_study

    # submitted through the CLI exactly as a user would
    cfg = tmp_path / "sl.yaml"
    st = tiny_study("sl").study
    cfg.write_text(yaml.safe_dump(
        {"name": "sl", **st.base.model_dump(mode="json", exclude={"name"}),
         "sweep": st.sweep, "study": st.study.model_dump(mode="json")}))
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "llem.cli", "run", str(cfg), "--executor", "slurm",
         "--max-parallel", "2", "--results-dir", str(tmp_path / "slurm")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    found = re.search(r"submitted Slurm array (\d+) -> (\S+)", p.stdout)
    assert found, p.stdout
    job, study_dir = found.group(1), Path(found.group(2))
    assert "--array=0-5%2" in next((study_dir / "slurm").glob("array-*.sbatch")).read_text()
    m = slurm.wait(study_dir, poll_s=1, timeout_s=900, progress=False)
    t_slurm = time.monotonic() - t0
    assert m.counts()["done"] == 6, slurm.status_rows(study_dir)
    for r in m.runs:
        res = read_result(study_dir / r.run_dir)
        assert res.environment.slurm.get("slurm_array_job_id") == job
        assert res.environment.slurm.get("slurmd_nodename")
        assert r.slurm_job and r.slurm_job.startswith(f"{job}_")
    counts = Counter(line.split("\t")[0] for line in slurm_env.read_text().splitlines())
    assert sorted(counts.values()) == [1] * 6
    # the same study run locally has the same runs, configs and result structure
    t0 = time.monotonic()
    assert run_study(tiny_study("sl"), tmp_path / "local", quiet=True) == 0
    t_local = time.monotonic() - t0
    (local_dir,) = [d for d in (tmp_path / "local").iterdir() if d.is_dir()]
    assert shape(local_dir) == shape(study_dir)
    print(f"slurm (max_parallel 2): {t_slurm:.1f}s, local (serial): {t_local:.1f}s")


@pytest.mark.timing
def test_scancel_then_resume_loses_and_repeats_nothing(tmp_path: Path, slurm_env: Path) -> None:
    study_dir, _job = slurm.submit_study(tiny_study("cx"), tmp_path / "r",
                                        slurm.SlurmOptions(max_parallel=1))
    deadline = time.monotonic() + 300
    while mf.rebuild(study_dir, mf.load_manifest(study_dir)).counts()["done"] < 2:
        assert time.monotonic() < deadline, slurm.status_rows(study_dir)
        time.sleep(0.5)
    subprocess.run([sys.executable, "-m", "llem.cli", "study", "cancel", str(study_dir)],
                   check=True, capture_output=True)
    deadline = time.monotonic() + 120
    while slurm.active_runs(study_dir):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    before = mf.rebuild(study_dir, mf.load_manifest(study_dir))
    done_before = {r.run_dir for r in before.runs if r.state == "done"}
    assert 2 <= len(done_before) < 6
    out = subprocess.run([sys.executable, "-m", "llem.cli", "study", "resume", str(study_dir),
                          "--wait"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    after = mf.load_manifest(study_dir)
    assert after.counts()["done"] == 6
    counts = Counter(Path(line.split("\t")[0]).relative_to(study_dir).as_posix()
                     for line in slurm_env.read_text().splitlines())
    assert set(counts) == {r.run_dir for r in after.runs}
    for run in done_before:
        assert counts[run] == 1, f"{run} completed before the cancel but ran again"
    assert all(v <= 2 for v in counts.values())  # only a run killed mid-way runs twice
    assert len(slurm.read_jobs(study_dir).submissions) == 2
