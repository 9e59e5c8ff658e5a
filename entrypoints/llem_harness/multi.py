"""``python -m llem_harness.multi RUN_DIR...``: several runs, one loaded model.

For ``study.reuse_model``: the launcher groups consecutive runs that differ only in
generation-time parameters (``decoding.*`` except the seed, ``workload.*``) and hands the
group to one harness process. Each run goes through exactly the single-run path
(:func:`llem_harness.runner.main`: its own log, baseline, warm-up, windows, result file
and exit code); only a :class:`~llem_harness.phases.setup.Session` is shared: the first run
loads the backend, later runs swap in their config and skip the load, a warm-up that
reaches the steady latency already seen for the same batch shape stops after one run, and
FLOPs probes are not repeated. Every result says ``reused_model: true`` except the run that
loaded it; the model is unloaded once at the end.

The swap is safe because the backends read ``self.config`` at call time for everything
generation-related; the launcher guarantees that everything read at load time is equal.
"""

from __future__ import annotations

import contextlib
import logging
import sys

from llem_harness import runner
from llem_harness.phases.setup import Session
from llem_schema.exit_codes import ExitCode

log = logging.getLogger("llem_harness.multi")


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m llem_harness.multi RUN_DIR [RUN_DIR...]", file=sys.stderr)
        return int(ExitCode.BAD_CONFIG)
    session = Session()
    first_error = 0
    try:
        for run_dir in argv:
            code = runner.main([run_dir], session)
            if code and not first_error:
                first_error = code
            if code == ExitCode.INTERRUPTED:
                break  # SIGTERM / Ctrl+C ends the batch, not just this run
            if code:
                session.close()  # a failed run may have left the backend in a bad state
    finally:
        with contextlib.suppress(Exception):
            session.close()
    return int(first_error)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
