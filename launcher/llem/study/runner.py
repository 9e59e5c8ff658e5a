"""Execute a study: expand, order, run each (experiment, cycle), resume after a crash.

A single experiment is a study of one run, so ``llem run experiment.yaml`` and a sweep
share one code path, one layout and one resume story.

Crash safety (a SIGKILL at any instant loses and repeats nothing):

* each run's ``state.json`` is written atomically by the one worker that owns the run;
* a run is done only when its ``result.json`` validates (:func:`manifest.read_state`), so
  a kill between the harness's result and our state update still counts the run;
* a run left ``running`` by a killed launcher may still have its harness alive (runtimes
  start it in its own session): resume waits for it (:mod:`llem.study.orphans`) before
  deciding, so the same run is never executed twice at once or after it succeeded;
* one launcher per study directory at a time (an ``flock`` the kernel drops on death).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from llem.config.loader import LoadedConfig
from llem.runtimes.base import Runtime, RuntimeUnavailable
from llem.study import manifest as mf
from llem.study import target
from llem.study.execute import execute, harness_env, make_runtime
from llem.study.interrupts import mark_interrupted, sigterm_as_interrupt
from llem.study.lock import StudyLock, cooldown
from llem.study.orphans import stop_study_orphans, wait_for_orphans
from llem.study.rundir import experiment_id, new_study_id, read_result, write_spec
from llem.study.slots import Slot, SlotPool, gpu_slots
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from llem_schema.runspec import RunSpec
from llem_schema.study import StudyExecution, expand_experiments, order_runs


def plan_runs(loaded: LoadedConfig) -> list[mf.RunEntry]:
    study = loaded.study
    experiments = expand_experiments(study)
    ids = [experiment_id(i, e) for i, e in enumerate(experiments)]
    entries = []
    for pos, (e, c) in enumerate(order_runs(len(experiments), study.study)):
        entries.append(
            mf.RunEntry(
                run_id=f"{ids[e]}/cycle-{c}",
                experiment_id=ids[e],
                experiment_index=e,
                cycle=c,
                position=pos,
                run_dir=f"{ids[e]}/cycle-{c}",
            )
        )
    return entries


def open_study(
    loaded: LoadedConfig, results_dir: Path, resume: bool, fresh: bool,
    study_dir: Path | None = None,
) -> tuple[Path, mf.Manifest]:
    """The study directory and manifest: a new one, or the one being resumed
    (``study_dir`` when given, else the newest of this name under ``results_dir``)."""
    study = loaded.study
    if study_dir is not None and not fresh:
        return study_dir, check_and_rebuild(loaded, study_dir)
    if resume and not fresh:
        existing = mf.find_latest(results_dir, study.name)
        if existing is None:
            raise ConfigError(
                f"--resume: no earlier study named '{study.name}' under {results_dir}; "
                "run without --resume to start it"
            )
        return existing, check_and_rebuild(loaded, existing)
    study_id = new_study_id(study.name)
    study_dir = results_dir / study_id
    n = 1
    while study_dir.exists():
        n += 1
        study_dir = results_dir / f"{study_id}-{n}"
    return study_dir, mf.create(study_dir, study_dir.name, study, plan_runs(loaded))


def check_and_rebuild(loaded: LoadedConfig, study_dir: Path) -> mf.Manifest:
    manifest = mf.load_manifest(study_dir)
    if manifest.study_hash != mf.study_hash(loaded.study):
        raise ConfigError(
            f"--resume: {loaded.source} changed since {study_dir.name} started "
            f"(hash {manifest.study_hash} -> {mf.study_hash(loaded.study)}); use --fresh to "
            "start over in a new directory"
        )
    return mf.rebuild(study_dir, manifest, verify=True)  # a damaged result runs again


def todo_entries(manifest: mf.Manifest, max_retries: int) -> list[mf.RunEntry]:
    """Runs still to execute, in study order: not done, failed at most ``max_retries`` times
    beyond the first attempt. ``running`` (a killed launcher) counts as not yet failed."""
    out = []
    for r in sorted(manifest.runs, key=lambda r: r.position):
        if r.state == "done":
            continue
        if r.state == "failed" and r.attempts > max_retries:
            continue
        out.append(r)
    return out


def _check_paths(experiments: list[ExperimentConfig], source: str) -> None:
    """Model and dataset paths exist on this host: before the study directory is made and
    before any run starts, so nothing is half-done when one is missing."""
    from llem.config import preflight

    for exp in {e.config_hash(): e for e in experiments}.values():
        found = preflight.problems(exp, paths=True)
        if found:
            raise ConfigError(f"{source}: {found[0]}")


def make_spec(
    manifest: mf.Manifest, entry: mf.RunEntry, cfg: ExperimentConfig, runtime: str,
    gpus: list[int | str], provenance: dict[str, str] | None = None,
) -> RunSpec:
    return RunSpec(
        provenance=provenance or {},
        experiment_id=entry.experiment_id,
        run_id=f"{manifest.study_id}/{entry.run_id}",
        study_id=manifest.study_id,
        cycle=entry.cycle,
        config=cfg,
        config_hash=cfg.config_hash(),
        runtime=runtime,
        gpus=gpus,
    )


@dataclass
class _Ctx:
    study_dir: Path
    manifest: mf.Manifest
    experiments: list[ExperimentConfig]
    console: Console
    quiet: bool
    execution: StudyExecution
    runtimes: dict[int, Runtime]
    batch_runners: dict[int, object] = field(default_factory=dict)
    failures: int = 0
    interrupted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: dotted path -> where its value came from, saved with each result
    provenance: dict[str, str] = field(default_factory=dict)
    #: slot index -> why the cooldown before its next unit gave up (lock.cooldown)
    cooldown_notes: dict[int, str] = field(default_factory=dict)


def run_study(
    loaded: LoadedConfig,
    results_dir: Path,
    quiet: bool = False,
    resume: bool = False,
    fresh: bool = False,
    cuda: str | None = None,
    lock: Path | None = None,
    console: Console | None = None,
    runtime_factory: Callable[[], Runtime] | None = None,
    batch_python: str | None = None,
    study_dir: Path | None = None,
) -> int:
    """Run (or resume) the study; returns the process exit code.

    ``runtime_factory`` builds one runtime per GPU slot (default: from the config);
    ``batch_python`` is the interpreter for reuse_model groups (default: this one).
    """
    console = console or Console()
    study = loaded.study
    ex = study.study
    experiments = expand_experiments(study)
    _check_paths(experiments, loaded.source)
    new = fresh or (study_dir is None and not resume)  # open_study creates a directory
    study_dir, manifest = open_study(loaded, results_dir, resume, fresh, study_dir)
    with StudyLock(study_dir), sigterm_as_interrupt():
        manifest = _settle_orphans(study_dir, manifest, study.base.runtime.timeout_seconds)
        counts = manifest.counts()
        console.print(
            f"[bold]{manifest.study_id}[/]: {len(manifest.runs)} run(s) "
            f"({counts['done']} done) -> {study_dir}"
        )
        if runtime_factory is None:
            def runtime_factory() -> Runtime:
                return make_runtime(
                    study.base.runtime.runtime,
                    backend=study.base.backend,
                    image=study.base.runtime.image,
                    registry=study.base.runtime.registry,
                    pull_policy=study.base.runtime.pull_policy,
                    cuda=cuda,
                    lock=lock,
                )
        slots = gpu_slots(ex, study.base.runtime.gpus)
        try:  # no image, no daemon, a container that cannot start: nothing ran
            ctx = _Ctx(study_dir, manifest, experiments, console, quiet, ex,
                       runtimes={s.index: runtime_factory() for s in slots},
                       provenance=loaded.provenance | {p: "sweep" for p in study.sweep})
            if len(slots) > 1:
                console.print(f"{len(slots)} GPU slot(s): " + "  ".join(s.label() for s in slots))
            code = _execute_all(ctx, slots, ex.max_retries, ex.reuse_model, batch_python)
            if code == 0 and ex.target_ci is not None:
                code = _reach_target(ctx, slots, batch_python)
        except RuntimeUnavailable:
            if new:
                _discard_unstarted(study_dir)
            raise
        manifest = mf.rebuild(study_dir, ctx.manifest)
    counts = manifest.counts()
    if code == 130:
        console.print("[red]interrupted[/]: resume with --resume")
        return 130
    if ex.target_ci is not None:
        target.print_report(manifest, experiments, console)
    _summarise(study_dir, manifest, console)
    console.print(
        f"{counts['done']}/{len(manifest.runs)} run(s) done, {counts['failed']} failed "
        f"-> {study_dir}"
    )
    return 0 if counts["done"] == len(manifest.runs) else 1


def _reach_target(ctx: _Ctx, slots: list[Slot], batch_python: str | None) -> int:
    """study.target_ci: rounds of extra cycles, each run like the planned ones."""
    ex = ctx.execution
    assert ex.target_ci is not None

    def run_more(manifest: mf.Manifest) -> tuple[int, mf.Manifest]:
        ctx.manifest = manifest
        code = _execute_all(ctx, slots, ex.max_retries, ex.reuse_model, batch_python)
        return code, ctx.manifest

    code, ctx.manifest = target.run_to_target(ctx.study_dir, ctx.manifest, ex.target_ci,
                                              ctx.console, run_more)
    return code


def _discard_unstarted(study_dir: Path) -> None:
    """Remove a study directory this call created when no run in it ever started (the
    runtime failed first), so fixing the cause and running again leaves no empty study
    behind for ``--resume`` to pick."""
    import shutil

    states = [mf.read_state(study_dir, r) for r in mf.load_manifest(study_dir).runs]
    if all(r.state == "pending" and r.attempts == 0 for r in states):
        shutil.rmtree(study_dir, ignore_errors=True)


def _settle_orphans(study_dir: Path, manifest: mf.Manifest, timeout: float | None) -> mf.Manifest:
    """What a killed launcher left: every container of the study first (one that finished
    on its own left a valid result, so its run counts as done and no per-run check below
    would ever see it), then each run marked ``running`` (a local harness still working is
    waited for). Anything found, or any run marked ``running``: the manifest is re-read
    from the run directories, results verified. A harness that found nothing to wait for
    may have finished since the study was opened (CI under load ran such a run twice):
    only its run directory, read now, can say so."""
    waited = stop_study_orphans(study_dir) > 0
    running = [r for r in manifest.runs if r.state == "running"]
    for r in running:
        waited |= wait_for_orphans(study_dir / r.run_dir, timeout)
    return mf.rebuild(study_dir, manifest, verify=True) if waited or running else manifest


def _execute_all(
    ctx: _Ctx, slots: list[Slot], max_retries: int, reuse: bool, batch_python: str | None
) -> int:
    from llem.study import reuse as reuse_mod

    while True:
        todo = todo_entries(ctx.manifest, max_retries)
        if not todo:
            return 0
        if reuse and isinstance(next(iter(ctx.runtimes.values())), _local_runtime_class()):
            keys = [reuse_mod.reuse_key(ctx.experiments[e.experiment_index]) for e in todo]
            units = reuse_mod.group_consecutive(todo, keys)
        else:
            if reuse:
                ctx.console.print(
                    "[yellow]study.reuse_model[/]: only the local runtime shares a model "
                    "between runs; this runtime loads it per run"
                )
            units = [[e] for e in todo]
        pool = _make_pool(ctx, slots, batch_python)

        def interrupt() -> None:
            ctx.interrupted = True
            for rt in ctx.runtimes.values():
                rt.cleanup()
            for br in ctx.batch_runners.values():
                br.cleanup()  # type: ignore[attr-defined]

        try:
            res = pool.run(units, on_interrupt=interrupt)
        except KeyboardInterrupt:
            return 130
        if res.errors:
            raise res.errors[0]
        ctx.manifest = mf.rebuild(ctx.study_dir, ctx.manifest)
        if ctx.interrupted:
            return 130
        if pool.stopped:  # max_failures reached
            return 1
        # retry what failed in this pass (attempts bounded by max_retries)
        if not any(r.state == "failed" for r in todo_entries(ctx.manifest, max_retries)):
            return 0


def _make_pool(
    ctx: _Ctx, slots: list[Slot], batch_python: str | None
) -> SlotPool[list[mf.RunEntry]]:
    ex = ctx.execution

    def work(unit: list[mf.RunEntry], slot: Slot) -> None:
        _run_unit(ctx, pool, unit, slot, batch_python)

    def between(slot: Slot) -> None:
        note = cooldown(ex.cooldown_seconds, ex.cooldown_max_temp_c, slot.gpus)
        with ctx.lock:
            if note:
                ctx.cooldown_notes[slot.index] = note
            else:
                ctx.cooldown_notes.pop(slot.index, None)

    pool: SlotPool[list[mf.RunEntry]] = SlotPool(slots, work=work, between=between)
    return pool


def _local_runtime_class() -> type:
    from llem.runtimes.local import LocalRuntime

    return LocalRuntime


def _run_unit(
    ctx: _Ctx, pool: SlotPool, unit: list[mf.RunEntry], slot: Slot, batch_python: str | None
) -> None:
    runtime = ctx.runtimes[slot.index]
    before = [e.model_copy() for e in unit]
    with ctx.lock:  # a cooldown that gave up before this unit: in its state and log line
        cooled = ctx.cooldown_notes.pop(slot.index, None)
    specs = []
    for entry in unit:
        cfg = ctx.experiments[entry.experiment_index]
        gpus = list(slot.gpus) if slot.gpus else list(cfg.runtime.gpus)
        spec = make_spec(ctx.manifest, entry, cfg, runtime.name, gpus, ctx.provenance)
        specs.append(spec)
        entry.state = "running"
        entry.attempts += 1
        entry.message = cooled
        mf.write_state(ctx.study_dir, entry)
    total = len(ctx.manifest.runs)
    for entry, spec in zip(unit, specs, strict=False):
        ctx.console.print(
            f"\\[{entry.position + 1}/{total}] {entry.experiment_id} "
            f"{escape(spec.config.name or '')} "
            f"cycle {entry.cycle} ({runtime.name}, gpus {slot.label()})"
            + (" [shared model]" if len(unit) > 1 else "")
            + (f" [yellow]{escape(cooled)}[/]" if cooled else "")
        )
    if len(unit) == 1:
        try:
            report = execute(runtime, specs[0], ctx.study_dir / unit[0].run_dir,
                             quiet=ctx.quiet)
        except RuntimeUnavailable:  # the run never started: not an attempt, not running
            for entry, old in zip(unit, before, strict=True):
                entry.state, entry.attempts, entry.message = old.state, old.attempts, old.message
                mf.write_state(ctx.study_dir, entry)
            raise
        outcomes = [(unit[0], report.ok, report.message, report.outcome.interrupted)]
    else:
        outcomes = _run_batch(ctx, unit, specs, slot, batch_python)
    for entry, ok, message, interrupted in outcomes:
        if interrupted and not ok:
            mark_interrupted(entry)
            mf.write_state(ctx.study_dir, entry)
            ctx.console.print(f"[yellow]interrupted[/] {entry.run_id}: resume runs it again")
            ctx.interrupted = True
            pool.stop()
            continue
        entry.state = "done" if ok else "failed"
        entry.message = (cooled if ok else f"{message}; {cooled}" if cooled else message)
        mf.write_state(ctx.study_dir, entry)
        if not ok:
            ctx.console.print(f"[red]failed[/] {entry.run_id}: {escape(message)}")
            with ctx.lock:
                ctx.failures += 1
                limit = ctx.execution.max_failures
                if limit is not None and ctx.failures >= limit and not pool.stopped:
                    ctx.console.print(
                        f"[red]stopping[/]: {ctx.failures} failure(s) (study.max_failures)"
                    )
                    pool.stop()
    # nothing more per run: the state files and the journal hold it (O(1) bytes per run);
    # the manifest is rebuilt at the end of the pass (_execute_all), not after each run


def _run_batch(
    ctx: _Ctx, unit: list[mf.RunEntry], specs: list[RunSpec], slot: Slot,
    batch_python: str | None,
) -> list[tuple[mf.RunEntry, bool, str, bool]]:
    from llem.study.reuse import LocalBatchRunner

    runner = ctx.batch_runners.setdefault(slot.index, LocalBatchRunner(batch_python))
    dirs = []
    for entry, spec in zip(unit, specs, strict=False):
        d = ctx.study_dir / entry.run_dir
        write_spec(d, spec)
        dirs.append(d)
    env = harness_env("local", dirs[0])
    out = runner.run(  # type: ignore[attr-defined]
        dirs, specs[0].gpus, env=env, timeout_s=specs[0].config.runtime.timeout_seconds,
        quiet=ctx.quiet,
    )
    results = []
    for entry, d in zip(unit, dirs, strict=False):
        try:
            read_result(d)
            results.append((entry, True, "ok", False))
        except ConfigError as exc:
            why = "timed out" if out.timed_out else f"batch harness exit {out.exit_code}"
            results.append((entry, False, f"{why}: {exc} [{d}/harness.log]", out.interrupted))
    return results


def _summarise(study_dir: Path, manifest: mf.Manifest, console: Console) -> None:
    """One run: its result table. A study: aggregate to study.parquet when available."""
    from llem.results.display import print_result

    done = [r for r in manifest.runs if r.state == "done"]
    if len(manifest.runs) == 1 and done:
        print_result(read_result(study_dir / done[0].run_dir), console)
        console.print(f"result: {study_dir / done[0].run_dir / 'result.json'}")
        return
    try:
        from llem.results import export
    except ImportError:
        return
    if done:
        try:
            export.aggregate(study_dir, skip_invalid=True)
            console.print(f"aggregated: {study_dir / 'study.parquet'}")
        except Exception as exc:
            console.print(f"[yellow]aggregation failed[/]: {exc} (llem results aggregate)")
