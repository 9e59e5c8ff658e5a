"""``study.target_ci`` end to end: ``llem run`` (a subprocess, as a user runs it) on the
local runtime with ``builtin:tiny-llama``. Four planned cycles have no CI (it needs five), so
the study adds a fifth, where the target is met: any five positive values give a relative
half-width below n/2 = 2.5, and the target is 3."""

from __future__ import annotations

import subprocess
from pathlib import Path

from llem.study import manifest as mf
from tests.conftest import llem_cmd, subprocess_env

STUDY = """\
name: tci
model: builtin:tiny-llama
workload: {num_prompts: 4, batch_size: 2}
decoding: {max_new_tokens: 8}
measurement: {baseline_seconds: 0, warmup_max_runs: 1, warmup_min_runs: 0,
              min_window_seconds: 0}
study:
  cycles: 4
  order: grouped
  reuse_model: true      # the four planned cycles share one process
  target_ci: {metric: tokens_per_s, rel_half_width: 3.0, max_cycles: 6}
"""


def test_cycles_are_added_until_the_target_is_met(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text(STUDY)
    p = subprocess.run([*llem_cmd(), "run", str(tmp_path / "study.yaml"), "--runtime", "local",
                        "--results-dir", str(tmp_path / "results"), "-q"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    out = " ".join(p.stdout.split())  # rich wraps long lines
    assert ("target_ci round 1: one more cycle for 1 configuration(s) (1 without a CI yet "
            "(needs 5 valid cycles))") in out
    assert "target_ci round 2" not in out
    assert "met at 5 cycles" in out and "5/5 run(s) done, 0 failed" in out
    (study,) = (tmp_path / "results").iterdir()
    m = mf.load_manifest(study)
    assert sorted(r.cycle for r in m.runs) == [0, 1, 2, 3, 4]
    assert all(r.state == "done" for r in m.runs)
    (st,) = m.target_ci
    assert (st.status, st.cycles, st.n_valid, st.metric) == ("met", 5, 5, "tokens_per_s")
    assert st.rel_half_width is not None and 0 < st.rel_half_width <= 3.0
    assert all((study / r.run_dir / "result.json").exists() for r in m.runs)
