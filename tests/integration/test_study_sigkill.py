"""A study SIGKILLed at random instants resumes with no completed run lost or repeated.

"Repeated" is measured, not inferred: every harness execution appends a line to a
counter file before it does anything (tests/fixtures/fake_harness.py, which sits behind
the real LocalRuntime exactly where the interpreter goes). At the end each run must have
been executed exactly once: a kill never loses a result that validated, and a resume never
starts a second harness for a run whose first harness is still alive or already done.

20+ trials use the fake harness (milliseconds per run); one trial uses the real harness
on builtin:tiny-llama.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timing]

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "fixtures" / "fake_harness.py"

DRIVER = """
import sys
from pathlib import Path
from rich.console import Console
from llem.config.loader import load
from llem.runtimes.local import LocalRuntime
from llem.study.runner import run_study
cfg, results, python, resume = sys.argv[1:5]
code = run_study(load(Path(cfg)), Path(results), quiet=True, resume=resume == "1",
                 console=Console(quiet=True),
                 runtime_factory=lambda: LocalRuntime(python=python), batch_python=python)
sys.exit(code)
"""


def env(counter: Path, **extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(
        str(REPO / p) for p in ("launcher", "entrypoints", "schemas")
    )
    e["LLEM_FAKE_COUNTER"] = str(counter)
    e["LLEM_FAKE_PYTHON"] = sys.executable
    e["HF_HUB_OFFLINE"] = "1"
    e.update(extra)
    return e


def start(cfg: Path, results: Path, python: str, resume: bool, e: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(cfg), str(results), python, "1" if resume else "0"],
        env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def has_study(results: Path) -> bool:
    return results.is_dir() and any((d / "manifest.json").exists() for d in results.iterdir())


def kill_and_resume(cfg: Path, results: Path, python: str, e: dict, rng: random.Random,
                    kills: int, max_delay: float) -> None:
    for _ in range(kills):
        proc = start(cfg, results, python, has_study(results), e)
        time.sleep(rng.uniform(0.0, max_delay))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = start(cfg, results, python, has_study(results), e)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


def check(results: Path, counter: Path, n_runs: int) -> None:
    from llem.study import manifest as mf
    from llem.study.rundir import read_result

    (study_dir,) = [d for d in results.iterdir() if d.is_dir()]
    m = mf.load_manifest(study_dir)
    assert m.counts()["done"] == n_runs, m.counts()
    for r in m.runs:
        read_result(study_dir / r.run_dir)  # validates
    counts = Counter(line.split("\t")[0] for line in counter.read_text().splitlines())
    expected = {str((study_dir / r.run_dir).resolve()) for r in m.runs}
    assert set(counts) == expected
    repeated = {k: v for k, v in counts.items() if v != 1}
    assert not repeated, f"runs executed more than once: {repeated}"


def write_cfg(path: Path, study: dict, sweep: dict, base: dict) -> Path:
    doc = {"name": "kill", "model": "builtin:tiny-llama", "runtime": {"runtime": "local"},
           **base, "sweep": sweep, "study": study}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("trial", range(21))
def test_sigkill_fake_harness(tmp_path: Path, trial: int) -> None:
    sys.path[:0] = [str(REPO / p) for p in ("launcher", "entrypoints", "schemas")]
    rng = random.Random(1000 + trial)
    study = {"cycles": 3, "order": ["grouped", "interleaved", "shuffled"][trial % 3],
             "max_retries": 0}
    if trial % 4 == 1:
        study["gpus"] = [0, 1]  # two slots in parallel
    if trial % 5 == 2:
        study["reuse_model"] = True  # batches in one harness process
    cfg = write_cfg(tmp_path / "s.yaml", study, {"decoding.max_new_tokens": [4, 8]}, {})
    counter = tmp_path / "count.log"
    e = env(counter, LLEM_FAKE_SLEEP=str(rng.choice([0.02, 0.1, 0.3])))
    kill_and_resume(cfg, tmp_path / "r", str(FAKE), e, rng, kills=rng.randint(1, 4),
                    max_delay=2.5)
    check(tmp_path / "r", counter, 6)


def test_sigkill_real_harness(tmp_path: Path) -> None:
    sys.path[:0] = [str(REPO / p) for p in ("launcher", "entrypoints", "schemas")]
    rng = random.Random(7)
    base = {"workload": {"num_prompts": 2, "batch_size": 2},
            "decoding": {"max_new_tokens": 4},
            "measurement": {"baseline_seconds": 0, "warmup_max_runs": 1, "warmup_min_runs": 0,
                            "min_window_seconds": 0}}
    cfg = write_cfg(tmp_path / "s.yaml", {"cycles": 3, "max_retries": 0}, {}, base)
    counter = tmp_path / "count.log"
    e = env(counter, LLEM_FAKE_REAL="1")
    kill_and_resume(cfg, tmp_path / "r", str(FAKE), e, rng, kills=2, max_delay=12.0)
    check(tmp_path / "r", counter, 3)
