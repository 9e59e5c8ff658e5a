"""Slurm CLI output parsing, the batch script, GPU assignment, run-one's no-repeat rule.

Real sbatch/squeue runs are in tests/integration/test_slurm_study.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from llem.cli.run_one import assigned_gpus, run_one_dir
from llem.config.loader import LoadedConfig
from llem.executors import slurm
from llem.runtimes.local import LocalRuntime
from llem.study import manifest as mf
from llem.study.runner import open_study
from llem_schema.study import StudyConfig

FAKE = str(Path(__file__).resolve().parents[3] / "fixtures" / "fake_harness.py")


def test_parse_sbatch() -> None:
    assert slurm.parse_sbatch("4242\n") == "4242"
    assert slurm.parse_sbatch("4242;cluster\n") == "4242"
    with pytest.raises(slurm.SlurmError, match="unexpected"):
        slurm.parse_sbatch("Submitted batch job 1")


def test_parse_squeue_expands_pending_ranges() -> None:
    out = slurm.parse_squeue("7_[2-4,6%2]|PENDING|\n7_0|RUNNING|node01\n7_1|COMPLETING|n2\n")
    got = {(t.task, t.state, t.node) for t in out}
    assert got == {(2, "PENDING", None), (3, "PENDING", None), (4, "PENDING", None),
                   (6, "PENDING", None), (0, "RUNNING", "node01"), (1, "COMPLETING", "n2")}


def test_parse_sacct_skips_steps() -> None:
    out = slurm.parse_sacct("9_0|COMPLETED|n1\n9_0.batch|COMPLETED|n1\n9_1|CANCELLED by 0|n1\n")
    assert [(t.task, t.state) for t in out] == [(0, "COMPLETED"), (1, "CANCELLED")]


def test_batch_script(tmp_path: Path) -> None:
    opts = slurm.SlurmOptions(partition="gpu", account="proj", time="01:00:00",
                              gpus_per_task=1, max_parallel=3, python="/env/bin/python")
    text = slurm.batch_script(tmp_path, tmp_path / "runs-0.txt", opts, "s", 10)
    assert "#SBATCH --array=0-9%3" in text and "#SBATCH --gres=gpu:1" in text
    assert "#SBATCH --partition=gpu" in text and "#SBATCH --account=proj" in text
    assert "/env/bin/python -m llem.cli run-one" in text
    assert 'export PATH=/env/bin:"$PATH"' in text
    script = tmp_path / "s.sh"
    script.write_text(text)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_assigned_gpus() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_GPUS": "4,5"}
    assert assigned_gpus("local", env) == [0, 1]  # the task's own numbering
    assert assigned_gpus("docker", env) == [4, 5]  # the daemon sees physical ids
    assert assigned_gpus("podman", {"SLURM_STEP_GPUS": "GPU-ab"}) == ["GPU-ab"]
    assert assigned_gpus("local", {"CUDA_VISIBLE_DEVICES": "NoDevFiles"}) is None
    assert assigned_gpus("local", {}) is None


def test_run_one_runs_once_and_records_slurm_task(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "count.log"
    monkeypatch.setenv("LLEM_FAKE_COUNTER", str(counter))
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    study = StudyConfig.model_validate({"name": "one", "base": {
        "model": "builtin:tiny-llama", "runtime": {"runtime": "local"}}, "study": {"cycles": 2}})
    ld = LoadedConfig(study=study, is_study=True, source="s.yaml")
    study_dir, m = open_study(ld, tmp_path / "r", resume=False, fresh=False)
    run_dir = study_dir / m.runs[1].run_dir
    rt = LocalRuntime(python=FAKE)
    assert run_one_dir(run_dir, runtime=rt, quiet=True) == 0
    assert run_one_dir(run_dir, runtime=rt, quiet=True) == 0  # already done: not re-run
    assert len(counter.read_text().splitlines()) == 1
    entry = mf.find_entry(study_dir, run_dir)
    assert entry.state == "done" and entry.slurm_job == "77_1" and entry.attempts == 1
    rows = slurm.status_rows(study_dir)
    assert [r["state"] for r in rows] == ["pending", "done"]
