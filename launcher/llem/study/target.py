"""``study.target_ci``: add cycles until each configuration's CI is narrow enough.

How many cycles a configuration needs is known only from its own results (a noisy one
needs more than a steady one), so the study runs its planned ``cycles`` and then works in
rounds: each round computes every configuration's CI of the chosen metric with the code
``llem results show`` uses (:func:`llem.results.stats.summarise`), and every configuration
still above the target gets one more cycle. A round ends when its runs are done; the loop
ends when no configuration needs another cycle.

A configuration stops receiving cycles when its target is met, when it has run
``max_cycles``, when the metric is null in all its results (a CPU host has no energy: more
cycles cannot change that) or when none of its runs finished. So the loop always ends, at
most ``max_cycles - cycles`` rounds after the plan.

The added cycles are ordinary manifest entries (``<experiment>/cycle-<k>``): a crash or
Ctrl+C resumes them like planned runs, and a resumed study re-evaluates and goes on adding.
Each round's standing is stored in ``manifest.json`` (``target_ci``, one entry per
configuration).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from llem.study import manifest as mf
from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from llem_schema.result import ExperimentResult
from llem_schema.study import TargetCI

#: runs one round's new entries; returns (exit code, refreshed manifest)
RunMore = Callable[[mf.Manifest], tuple[int, mf.Manifest]]


def _done_results(study_dir: Path, manifest: mf.Manifest,
                  cache: dict[str, ExperimentResult]) -> dict[int, list[ExperimentResult]]:
    """Finished results per experiment index; each result.json is read once per study call."""
    from llem.study.rundir import read_result

    out: dict[int, list[ExperimentResult]] = {}
    for r in manifest.runs:
        if r.state != "done":
            continue
        if r.run_dir not in cache:
            try:
                cache[r.run_dir] = read_result(study_dir / r.run_dir)
            except ConfigError:
                continue  # unreadable since it was counted done: as good as not run
        out.setdefault(r.experiment_index, []).append(cache[r.run_dir])
    return out


def _rel_half_width(low: float, high: float, mean: float) -> float:
    """(high - low) / 2 / |mean|; a zero mean is met only by a zero-width interval."""
    half = (high - low) / 2
    if mean == 0:
        return 0.0 if half == 0 else math.inf
    return half / abs(mean)


def _key(experiment_index: int) -> str:
    return f"experiment-{experiment_index}"


def evaluate(study_dir: Path, manifest: mf.Manifest, target: TargetCI,
             cache: dict[str, ExperimentResult]) -> list[mf.TargetStatus]:
    """Each configuration's standing against the target, from its finished results."""
    from llem.results import stats

    results = _done_results(study_dir, manifest, cache)
    # grouped by experiment, not by config hash: two experiments of one study may share a
    # hash (a sweep that changes only the name), and each has its own cycles to count
    summary = stats.summarise(
        [r.model_copy(update={"config_hash": _key(i)}) for i, rs in results.items() for r in rs],
        metrics=[target.metric])
    by_key = {c.config_hash: c for c in summary.configs}
    cycles: dict[int, int] = {}
    ids: dict[int, str] = {}
    for r in manifest.runs:
        cycles[r.experiment_index] = cycles.get(r.experiment_index, 0) + 1
        ids[r.experiment_index] = r.experiment_id
    out = []
    for i in sorted(cycles):
        config = by_key.get(_key(i))
        m = config.metrics[target.metric] if config is not None else None
        base = {"experiment_id": ids[i], "metric": target.metric,
                "target": target.rel_half_width, "cycles": cycles[i],
                "n_valid": m.n_valid if m else 0}
        if m is None or m.n == 0:
            out.append(mf.TargetStatus(**base, met=False, status="no_results",
                                       note="no finished run"))
            continue
        if m.n_valid == 0:
            why = next(iter(m.null_reasons.values()), "null in every result")
            out.append(mf.TargetStatus(**base, met=False, status="not_measured", note=why))
            continue
        rel = None if m.ci is None or m.mean is None else _rel_half_width(
            m.ci.low, m.ci.high, m.mean)
        met = rel is not None and rel <= target.rel_half_width
        status = "met" if met else "max_cycles" if cycles[i] >= target.max_cycles else "adding"
        out.append(mf.TargetStatus(
            **base, mean=m.mean, ci_low=m.ci.low if m.ci else None,
            ci_high=m.ci.high if m.ci else None,
            rel_half_width=rel if rel is None or math.isfinite(rel) else None, met=met,
            status=status, note=None if m.ci else m.ci_note))
    return out


def next_entries(manifest: mf.Manifest, statuses: list[mf.TargetStatus]) -> list[mf.RunEntry]:
    """One new cycle for each configuration still ``adding``, after every existing run."""
    adding = {s.experiment_id for s in statuses if s.status == "adding"}
    last: dict[str, mf.RunEntry] = {}
    for r in manifest.runs:
        if r.experiment_id in adding and (r.experiment_id not in last
                                          or r.cycle > last[r.experiment_id].cycle):
            last[r.experiment_id] = r
    position = max((r.position for r in manifest.runs), default=-1) + 1
    out = []
    for prev in sorted(last.values(), key=lambda r: r.experiment_index):
        cycle = prev.cycle + 1
        out.append(mf.RunEntry(
            run_id=f"{prev.experiment_id}/cycle-{cycle}", experiment_id=prev.experiment_id,
            experiment_index=prev.experiment_index, cycle=cycle, position=position,
            run_dir=f"{prev.experiment_id}/cycle-{cycle}"))
        position += 1
    return out


def run_to_target(study_dir: Path, manifest: mf.Manifest, target: TargetCI, console: Console,
                  run_more: RunMore) -> tuple[int, mf.Manifest]:
    """Rounds of one more cycle per configuration above the target, until none is.

    Returns ``(code, manifest)``: 0 when no configuration needs more, else the first
    non-zero code of ``run_more`` (interrupted, max_failures), the manifest as it stands.
    The new entries reach manifest.json before they run, so a crash resumes them.
    """
    cache: dict[str, ExperimentResult] = {}
    round_no = 0
    while True:
        statuses = evaluate(study_dir, manifest, target, cache)
        manifest = manifest.model_copy(update={"target_ci": statuses})
        new = next_entries(manifest, statuses)
        if not new:
            return 0, mf.rebuild(study_dir, manifest)
        round_no += 1
        console.print(round_line(round_no, target, statuses), highlight=False)
        manifest = mf.rebuild(study_dir, manifest.model_copy(
            update={"runs": [*manifest.runs, *new]}))
        code, manifest = run_more(manifest)
        if code != 0:
            return code, manifest


def round_line(round_no: int, target: TargetCI, statuses: list[mf.TargetStatus]) -> str:
    """What one round adds and why: above the target, or no CI yet (fewer than 5 cycles)."""
    from llem.results.stats import MIN_CYCLES

    adding = [s for s in statuses if s.status == "adding"]
    wide = sum(s.rel_half_width is not None for s in adding)
    why = []
    if wide:
        why.append(f"{wide} above +-{target.rel_half_width:.1%} on {target.metric}")
    if len(adding) - wide:
        why.append(f"{len(adding) - wide} without a CI yet (needs {MIN_CYCLES} valid cycles)")
    return (f"target_ci round {round_no}: one more cycle for {len(adding)} "
            f"configuration(s) ({'; '.join(why)})")


def status_line(s: mf.TargetStatus, name: str | None) -> str:
    """One line for one configuration: met or not, at how many cycles, and why it stopped."""
    label = f"{s.experiment_id} {name}" if name else s.experiment_id
    width = (f"+-{s.rel_half_width:.1%}" if s.rel_half_width is not None
             else "no CI yet" if s.status != "not_measured" else "")
    if s.status == "met":
        what = f"met at {s.cycles} cycles ({width} <= {s.target:.1%})"
    elif s.status == "max_cycles":
        what = f"not met after {s.cycles} cycles, max_cycles reached ({width} > {s.target:.1%})"
    elif s.status == "not_measured":
        what = f"{s.metric} not measured here ({s.note}); stopped at {s.cycles} cycles"
    elif s.status == "no_results":
        what = f"no finished run; stopped at {s.cycles} cycles"
    else:
        what = f"not met yet at {s.cycles} cycles ({width}); resume to go on"
    return f"target_ci {label}: {what}"


def print_report(manifest: mf.Manifest, experiments: list[ExperimentConfig],
                 console: Console) -> None:
    """One line per configuration (see :func:`status_line`)."""
    index = {r.experiment_id: r.experiment_index for r in manifest.runs}
    for s in manifest.target_ci:
        name = experiments[index[s.experiment_id]].name if s.experiment_id in index else None
        console.print(escape(status_line(s, name)), highlight=False)
