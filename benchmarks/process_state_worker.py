"""The test process of benchmarks/process_state.py: the bare loop's own code on its own model
(references/bare_generate.py), in a process that takes on llem, one stage at a time.

Started with llem worker's environment (its PYTHONPATH), it imports nothing of llem until
told to. Each ``{"stage": NAME}`` request moves it towards the state of llem's worker after
a run, in the order a run takes (stages before NAME not yet taken are taken first):

* ``imported``: ``import llem_worker`` (llem's harness, schema, energy sources, pydantic,
  zeus, ...): llem's imports alone;
* ``probed``: llem's FLOPs counter (``flops.profile_callable``, the dispatch mode a run's last
  phase enters) around one bare segment of this process's own model: the one part of a run
  that hooks into torch's dispatcher, on its own, before llem's model is even loaded (the
  profiler it replaced slowed every later ``generate`` of its process 15-30%, session 5);
* ``loaded``: ``setup.load`` of llem's default config at the batch (llem's own model object,
  its workload on the device) into one :class:`Session`;
* ``instruments``: llem's instruments opened and closed once (the energy source, the NVML
  power sampler's start and stop);
* ``ran``: a whole llem run on that session (baseline, warm-up, measured and prefill
  windows, FLOPs probe, result), as ``llem_worker`` runs it.

Between stages the driver times ``{"side": "bare"}`` segments (the bare loop, exactly
bare_generate's ``Worker.segment``) against plain bare processes; after ``ran`` it may also
ask ``{"side": "llem"}``: llem's measured window alone on the run's context, as
gpu_validation's window-only requests. Whichever stage first moves the ratio is what llem's
worker carries that a bare process does not.

    python process_state_worker.py      stdin: {"stage": "imported"} | {"side": "bare", "batch": 8}
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "references"))

#: the stages in the order a llem run reaches them
#: (``probed`` ahead of ``loaded``: it needs only llem's code, and a drop seen there
#: cannot be the model's)
STAGES = ("fresh", "imported", "probed", "loaded", "instruments", "ran")


class TestProcess:
    """One process's state: the bare worker on its own model, then llem's parts."""

    def __init__(self, batch: int, bare: Any = None) -> None:
        """``bare``: the bare worker (default: bare_generate's on its own CUDA model)."""
        if bare is None:
            from bare_generate import Worker, build_model

            bare = Worker(build_model(None, "eager"), 128, 128)
        self.batch, self.bare = batch, bare
        self.stage = "fresh"
        self._dir = Path(tempfile.mkdtemp(prefix="llem-process-state-"))
        self._llem: Any = None
        self._session: Any = None
        self._ctx: Any = None
        #: what the ``probed`` stage's counter counted (None before it, or if it counted none)
        self.flops: float | None = None

    def _spec(self) -> Any:
        from llem_schema.runspec import RunSpec

        cfg = self._llem.config(self.batch, 0.1, "default")
        return RunSpec(experiment_id=cfg.name, run_id=self.stage, config=cfg,
                       config_hash=cfg.config_hash(), gpus=[0])

    def advance(self, stage: str) -> dict[str, Any]:
        """Take on ``stage``, and first every stage before it not yet taken (:data:`STAGES`
        order: a driver that measures only some stages still gets llem's order)."""
        at = STAGES.index(self.stage)
        if stage not in STAGES[at + 1:]:
            raise ValueError(f"stage {stage!r} asked at {self.stage!r}; later stages: "
                             f"{', '.join(STAGES[at + 1:]) or 'none (all taken)'}")
        t = time.perf_counter()
        for step in STAGES[at + 1:STAGES.index(stage) + 1]:
            getattr(self, "_" + step)()
            self.stage = step
        return {"stage": stage, "seconds": time.perf_counter() - t, "flops": self.flops}

    def _imported(self) -> None:
        sys.path.insert(0, str(HERE))
        import llem_worker

        self._llem = llem_worker

    def _probed(self) -> None:
        from llem_harness.flops import profile_callable

        self.flops = profile_callable(lambda: self.bare.segment(self.batch, 0.05))

    def _loaded(self) -> None:
        from llem_harness.phases import setup
        from llem_harness.phases.setup import Session

        self._session = Session()
        run_dir = self._dir / "loaded"
        run_dir.mkdir()
        self._ctx = setup.load(self._spec(), run_dir, self._session)

    def _instruments(self) -> None:
        from llem_harness.phases import setup

        with ExitStack() as stack:
            setup.open_instruments(self._ctx, stack)

    def _ran(self) -> None:
        run_dir = self._dir / "ran"
        run_dir.mkdir()
        res = self._llem.runner.run_experiment(self._spec(), run_dir, self._session)
        self._ctx = self._llem._LOADED[0]
        (run_dir / "result.json").write_text(res.model_dump_json(indent=1))

    def segment(self, side: str, seconds: float) -> dict[str, Any]:
        if side == "bare":
            return self.bare.segment(self.batch, seconds) | {"side": side, "stage": self.stage}
        if side == "llem" and self.stage == "ran":
            return self._llem.window_only(self._ctx, "default") | {"side": side,
                                                                   "stage": self.stage}
        raise ValueError(f"side {side!r} at stage {self.stage!r}: 'bare', or 'llem' after 'ran'")

    def close(self) -> None:
        """Release llem's session and remove the run directories (nothing reads them after
        the run: its result is checked by the run itself)."""
        if self._session is not None:
            self._session.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def main() -> int:
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    proc = TestProcess(batch)
    print(json.dumps({"ready": True, "stage": proc.stage}), flush=True)
    try:
        for line in sys.stdin:
            req = json.loads(line)
            if req.get("quit"):
                break
            if "stage" in req:
                reply = proc.advance(req["stage"])
            else:
                reply = proc.segment(req.get("side", "bare"), float(req.get("seconds", 0.1)))
            print(json.dumps(reply), flush=True)
    finally:
        proc.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
