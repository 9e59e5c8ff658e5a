"""Run one experiment: the phases in order, then ``result.json``.

Order of work (each step documented in docs/methodology.md; each phase is a module of
:mod:`llem_harness.phases`):

1. ``setup.load``: load the model (or reuse it) and tokenise the workload — outside every
   window; ``setup.open_instruments``: energy source and power sampler;
2. ``baseline``: idle power over ``baseline_seconds`` with the model resident;
3. ``warmup``: until the latency CV of the last 3 runs is below the threshold (or a cap);
4. ``windows.measure``: the whole workload, repeated until the window spans at least
   ``min_window_seconds`` — energy and time come from the same :class:`EnergyWindow`;
5. ``windows.prefill``: a prefill-only window over the same batches, so prefill gets its
   own energy and decode is the remainder of the full window;
6. ``count_flops``: FLOPs probes, after every window has closed;
7. ``report.result.build``: the result, written atomically by :func:`main`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llem_harness.backends.base import BackendNotInstalled, ModelNotFound
from llem_harness.energy.base import EnergySourceUnavailable
from llem_harness.phases import baseline, count_flops, setup, warmup, windows
from llem_harness.phases.setup import Session
from llem_harness.report import result as report
from llem_harness.workload import DatasetError
from llem_schema.atomic import atomic_write_json
from llem_schema.exit_codes import ExitCode
from llem_schema.result import ExperimentResult
from llem_schema.runspec import EXPERIMENT_FILE, LOG_FILE, RESULT_FILE, RunSpec

log = logging.getLogger("llem_harness")


#: failures a user can fix, logged as one line, each with the exit code the launcher turns
#: into its message (anything else is logged with its traceback)
EXPECTED_FAILURES: dict[type[BaseException], ExitCode] = {
    BackendNotInstalled: ExitCode.BACKEND_NOT_INSTALLED,
    ModelNotFound: ExitCode.MODEL_NOT_FOUND,
    EnergySourceUnavailable: ExitCode.ENERGY_UNAVAILABLE,
    DatasetError: ExitCode.BAD_CONFIG,
}


class _Terminated(Exception):
    """SIGTERM (docker stop, scancel): leave like Ctrl+C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def run_experiment(spec: RunSpec, run_dir: Path, session: Session | None = None
                   ) -> ExperimentResult:
    """One run, phase by phase. With a ``session`` (``study.reuse_model``) the model stays
    loaded afterwards, and the steady warm-up latency and FLOPs probes learnt here serve
    the next run of the same model."""
    own = session is None
    session = session or Session()
    try:
        ctx = setup.load(spec, run_dir, session)
        with ExitStack() as stack:
            setup.open_instruments(ctx, stack)
            baseline.run(ctx)
            warmup.run(ctx, session.steady)
            windows.measure(ctx)
            windows.prefill(ctx)
            windows.settle(ctx)
            count_flops.run(ctx, session.flops_probes)
        return report.build(ctx)
    finally:
        if own:
            session.close()


def _setup_logging(run_dir: Path) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    fh = logging.FileHandler(run_dir / LOG_FILE)
    fh.setFormatter(fmt)
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [fh, sh]
    root.setLevel(logging.INFO)
    for noisy in ("urllib3", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def main(argv: list[str], session: Session | None = None) -> int:
    if len(argv) != 1:
        print("usage: python -m llem_harness RUN_DIR", file=sys.stderr)
        return ExitCode.BAD_CONFIG
    run_dir = Path(argv[0])
    if not (run_dir / EXPERIMENT_FILE).is_file():
        print(f"llem_harness: {run_dir / EXPERIMENT_FILE} not found", file=sys.stderr)
        return ExitCode.BAD_CONFIG
    _setup_logging(run_dir)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        spec = RunSpec.model_validate_json((run_dir / EXPERIMENT_FILE).read_text("utf-8"))
    except ValidationError as exc:
        log.error("invalid %s: %s", EXPERIMENT_FILE, exc)
        return ExitCode.BAD_CONFIG
    code = ExitCode.OK
    try:
        result = run_experiment(spec, run_dir, session)
        atomic_write_json(run_dir / RESULT_FILE, result.model_dump(mode="json"))
        log.info(
            "done: %.1f tok/s, energy %s J",
            result.throughput.output_tokens_per_s or 0.0,
            result.energy.total_j,
        )
    except (KeyboardInterrupt, _Terminated):
        log.error("interrupted")
        code = ExitCode.INTERRUPTED
    except tuple(EXPECTED_FAILURES) as exc:
        log.error("%s", exc)
        code = next(c for kind, c in EXPECTED_FAILURES.items() if isinstance(exc, kind))
    except BaseException as exc:
        log.error("%s", "".join(traceback.format_exception(exc)))
        code = ExitCode.OUT_OF_MEMORY if _is_oom(exc) else ExitCode.BACKEND_FAILURE
    if os.environ.get("LLEM_HARNESS_DEBUG"):
        log.info("exit code %d", int(code))
    return int(code)
