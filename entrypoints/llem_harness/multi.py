"""``python -m llem_harness.multi RUN_DIR...``: several runs, one loaded model.

For ``study.reuse_model``: the launcher groups consecutive runs that differ only in
generation-time parameters (``decoding.*`` except the seed, ``workload.*``) and hands the
group to one harness process. Each run goes through exactly the single-run path
(:func:`llem_harness.runner.main`: its own log, baseline, warm-up, windows, result file
and exit code); only the backend is shared: the first run loads it, later runs swap in
their config and skip the load, and the model is unloaded once at the end. Every result
says ``reused_model: true`` except the run that loaded it.

The swap is safe because the backends read ``self.config`` at call time for everything
generation-related; the launcher guarantees that everything read at load time is equal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from typing import Any

from llem_harness import runner
from llem_schema.config import ExperimentConfig
from llem_schema.exit_codes import ExitCode

log = logging.getLogger("llem_harness.multi")


class _Shared:
    """Holds the one backend instance of the batch and makes ``load``/``unload`` cheap."""

    def __init__(self, real_get_backend_class: Any) -> None:
        self._real = real_get_backend_class
        self.inner: Any = None
        self.info: Any = None
        self.key: tuple[str, str, tuple[int, ...]] | None = None
        self.reused = False

    def get_backend_class(self, name: str) -> Any:
        shared = self
        real_cls = self._real(name)

        class _Factory:
            @staticmethod
            def version() -> dict[str, str]:
                return real_cls.version()

            def __new__(cls, cfg: ExperimentConfig, device: str, indices: list[int]) -> Any:
                key = (name, device, tuple(indices))
                if shared.inner is not None and shared.key == key:
                    shared.inner.config = cfg
                    shared.reused = True
                else:
                    shared.close()
                    shared.inner = real_cls(cfg, device, indices)
                    shared.key, shared.info, shared.reused = key, None, False
                return _Proxy(shared)

        return _Factory

    def close(self) -> None:
        if self.inner is not None and self.info is not None:
            self.inner.unload()
        self.inner = self.info = self.key = None


class _Proxy:
    """The backend as the runner sees it: ``load`` once, ``unload`` deferred."""

    def __init__(self, shared: _Shared) -> None:
        self._shared = shared

    def load(self) -> Any:
        s = self._shared
        if s.info is None:
            s.info = s.inner.load()
            return s.info
        notes = [*s.info.notes, "model reused from an earlier run of this batch "
                 "(load_time_s is that first load)"]
        return dataclasses.replace(s.info, notes=notes)

    def unload(self) -> None:
        """Kept loaded for the next run of the batch; :meth:`_Shared.close` unloads."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared.inner, name)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m llem_harness.multi RUN_DIR [RUN_DIR...]", file=sys.stderr)
        return int(ExitCode.BAD_CONFIG)
    shared = _Shared(runner.get_backend_class)
    real_run = runner.run_experiment

    def run_experiment(spec: Any, run_dir: Any) -> Any:
        result = real_run(spec, run_dir)
        return result.model_copy(update={"reused_model": shared.reused})

    runner.get_backend_class = shared.get_backend_class
    runner.run_experiment = run_experiment
    first_error = 0
    try:
        for run_dir in argv:
            code = runner.main([run_dir])
            if code and not first_error:
                first_error = code
            if code == ExitCode.INTERRUPTED:
                break  # SIGTERM / Ctrl+C ends the batch, not just this run
            if code:
                shared.close()  # a failed run may have left the backend in a bad state
    finally:
        runner.get_backend_class = shared._real
        runner.run_experiment = real_run
        with contextlib.suppress(Exception):
            shared.close()
    return int(first_error)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
