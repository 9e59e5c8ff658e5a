"""Execute a study: expand, order, run each (experiment, cycle), resume after a crash.

A single experiment is a study of one run, so ``llem run experiment.yaml`` and a sweep
share one code path, one layout and one resume story.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from llem import manifest as mf
from llem.config_loader import LoadedConfig
from llem.rundir import experiment_id, new_study_id, read_result
from llem.run import execute, make_runtime
from llem_schema.errors import ConfigError
from llem_schema.runspec import RunSpec
from llem_schema.study import expand_experiments, order_runs


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
    loaded: LoadedConfig, results_dir: Path, resume: bool, fresh: bool
) -> tuple[Path, mf.Manifest]:
    """The study directory and manifest: a new one, or the one being resumed."""
    study = loaded.study
    if resume and not fresh:
        existing = mf.find_latest(results_dir, study.name)
        if existing is None:
            raise ConfigError(
                f"--resume: no earlier study named '{study.name}' under {results_dir}; "
                "run without --resume to start it"
            )
        manifest = mf.load_manifest(existing)
        if manifest.study_hash != mf.study_hash(study):
            raise ConfigError(
                f"--resume: {loaded.source} changed since {existing.name} started "
                f"(hash {manifest.study_hash} -> {mf.study_hash(study)}); use --fresh to start "
                "over in a new directory"
            )
        return existing, mf.rebuild(existing, manifest)
    study_id = new_study_id(study.name)
    study_dir = results_dir / study_id
    n = 1
    while study_dir.exists():
        n += 1
        study_dir = results_dir / f"{study_id}-{n}"
    return study_dir, mf.create(study_dir, study_dir.name, study, plan_runs(loaded))


def _cooldown(seconds: float, max_temp_c: float | None, gpus: list[int | str]) -> None:
    if seconds > 0:
        time.sleep(seconds)
    if max_temp_c is None:
        return
    try:
        import pynvml

        pynvml.nvmlInit()
        idx = [int(g) for g in gpus if str(g).isdigit()] or [0]
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in idx]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            temps = [pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
                     for h in handles]
            if max(temps) <= max_temp_c:
                return
            time.sleep(2)
    except Exception:  # noqa: BLE001 - no NVML on this host: time-based cooldown only
        return


def run_study(
    loaded: LoadedConfig,
    results_dir: Path,
    quiet: bool = False,
    resume: bool = False,
    fresh: bool = False,
    cuda: str | None = None,
    lock: Path | None = None,
    console: Console | None = None,
) -> int:
    console = console or Console()
    study = loaded.study
    experiments = expand_experiments(study)
    study_dir, manifest = open_study(loaded, results_dir, resume, fresh)
    counts = manifest.counts()
    console.print(
        f"[bold]{manifest.study_id}[/]: {len(manifest.runs)} run(s) "
        f"({counts['done']} done) -> {study_dir}"
    )
    runtime_name = study.base.runtime.runtime
    runtime = make_runtime(
        runtime_name,
        backend=study.base.backend,
        image=study.base.runtime.image,
        registry=study.base.runtime.registry,
        pull_policy=study.base.runtime.pull_policy,
        cuda=cuda,
        lock=lock,
    )
    failures = 0
    ex = study.study
    last_report = None
    todo = [r for r in sorted(manifest.runs, key=lambda r: r.position) if r.state != "done"]
    for i, entry in enumerate(todo):
        if entry.state == "failed" and entry.attempts > ex.max_retries:
            continue
        cfg = experiments[entry.experiment_index]
        spec = RunSpec(
            experiment_id=entry.experiment_id,
            run_id=f"{manifest.study_id}/{entry.run_id}",
            study_id=manifest.study_id,
            cycle=entry.cycle,
            config=cfg,
            config_hash=cfg.config_hash(),
            runtime=runtime.name,
            gpus=cfg.runtime.gpus or ex.gpus[: ex.gpus_per_experiment],
        )
        entry.state = "running"
        entry.attempts += 1
        mf.write_state(study_dir, entry)
        console.print(
            f"[{entry.position + 1}/{len(manifest.runs)}] {cfg.name or entry.experiment_id} "
            f"cycle {entry.cycle} ({runtime.name})"
        )
        try:
            report = execute(runtime, spec, study_dir / entry.run_dir, quiet=quiet)
        except KeyboardInterrupt:
            runtime.cleanup()
            entry.state, entry.message = "failed", "interrupted"
            mf.write_state(study_dir, entry)
            mf.rebuild(study_dir, manifest)
            console.print("[red]interrupted[/]: resume with --resume")
            return 130
        entry.state = "done" if report.ok else "failed"
        entry.message = None if report.ok else report.message
        mf.write_state(study_dir, entry)
        last_report = report
        if not report.ok:
            failures += 1
            console.print(f"[red]failed[/]: {report.message}")
            if report.outcome.interrupted:
                mf.rebuild(study_dir, manifest)
                return 130
            if ex.max_failures is not None and failures >= ex.max_failures:
                console.print(f"[red]stopping[/]: {failures} failure(s) (study.max_failures)")
                break
        if i < len(todo) - 1:
            _cooldown(ex.cooldown_seconds, ex.cooldown_max_temp_c, spec.gpus)
    manifest = mf.rebuild(study_dir, manifest)
    counts = manifest.counts()
    _summarise(study_dir, manifest, last_report, console)
    console.print(
        f"{counts['done']}/{len(manifest.runs)} run(s) done, {counts['failed']} failed "
        f"-> {study_dir}"
    )
    return 0 if counts["done"] == len(manifest.runs) else 1


def _summarise(study_dir: Path, manifest: mf.Manifest, last, console: Console) -> None:
    """One run: its result table. A study: aggregate to study.parquet when available."""
    from llem.display import print_result

    done = [r for r in manifest.runs if r.state == "done"]
    if len(manifest.runs) == 1 and done:
        print_result(read_result(study_dir / done[0].run_dir), console)
        console.print(f"result: {study_dir / done[0].run_dir / 'result.json'}")
        return
    try:
        from llem import export
    except ImportError:
        return
    if done:
        try:
            export.aggregate(study_dir)
            console.print(f"aggregated: {study_dir / 'study.parquet'}")
        except Exception as exc:  # noqa: BLE001 - the runs are safe; aggregation can be redone
            console.print(f"[yellow]aggregation failed[/]: {exc} (llem results aggregate)")
