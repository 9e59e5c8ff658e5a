"""llem_worker on the CPU: a window-only request reruns llem's measured window on the
first full run's context (no second run directory), and -noclock drops the step clock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).resolve().parents[3] / "benchmarks" / "llem_worker.py"


def test_window_only_requests_reuse_the_full_run_and_noclock_drops_the_clock(
        tmp_path: Path) -> None:
    req = {"batch": 2, "seconds": 0.05, "model": "builtin:tiny-llama"}
    lines = [req, req | {"window_only": True}, req | {"window_only": True},
             req | {"setting": "default-noclock"}]
    out = subprocess.run([sys.executable, str(WORKER), "--out", str(tmp_path)],
                         input="".join(json.dumps(x) + "\n" for x in lines), text=True,
                         capture_output=True, timeout=300, check=True)
    ready, full, again, again2, noclock = (json.loads(x) for x in out.stdout.splitlines())
    assert ready == {"ready": True}
    assert full.get("window_only") is None and full["itl_p50_s"] is not None
    for w in (again, again2):
        assert w["window_only"] is True and w["passes"] == 1 and w["tok_per_s"] > 0
    assert noclock["itl_p50_s"] is None and noclock["tok_per_s"] > 0
    # one run directory per full run: the window-only requests wrote none
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "000-b2-default", "003-b2-default-noclock"]


def test_a_launch_core_holds_the_window_thread_on_it(tmp_path: Path) -> None:
    """With BENCH_LAUNCH_CORE (gpu_validation --launch-core) the measured window's thread
    runs on that one core, in the full run and in window-only requests (that threads
    started before keep their cores: tests/unit/benchmarks/references/test_cpu_probe.py)."""
    import os

    core = max(os.sched_getaffinity(0))
    req = {"batch": 2, "seconds": 0.05, "model": "builtin:tiny-llama"}
    out = subprocess.run([sys.executable, str(WORKER), "--out", str(tmp_path)],
                         input="".join(json.dumps(x) + "\n" for x in
                                       (req, req | {"window_only": True})),
                         text=True, capture_output=True, timeout=300, check=True,
                         env=dict(os.environ, BENCH_LAUNCH_CORE=str(core)))
    _, full, again = (json.loads(x) for x in out.stdout.splitlines())
    for w in (full, again):
        assert w["cpu"]["affinity"] == 1 and w["cpu"]["launcher_core"] == core
