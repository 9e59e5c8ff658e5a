"""``llem rerun RESULT.json``: measure a result's experiment again, as it was measured.

Same resolved config (its hash is recomputed and must equal the recorded ``config_hash``, so
an edited or foreign file is refused rather than silently measuring something else), hence
the same seeds; the same image, by digest (a tag may have moved since); a new study
directory, so the original is never touched. The run itself is ``llem run``'s path
(:func:`llem.study.runner.run_study`) with the runtime pinned to that image: nothing about
how a run executes is duplicated here.

What cannot be the same is the machine: :mod:`llem.study.envdiff` says before the run what
differs as far as the host can know, and after it compares the new result's environment
with the original's in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from llem.config.loader import LoadedConfig
from llem.study import envdiff
from llem_schema.atomic import atomic_write_json
from llem_schema.errors import ConfigError
from llem_schema.result import EnvironmentInfo, ExperimentResult
from llem_schema.runspec import RESULT_FILE
from llem_schema.study import StudyConfig, StudyExecution

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from llem.results.compare import RatioComparison
    from llem.runtimes.base import Runtime

RUNTIMES = ("local", "docker", "podman")
#: written into the new study directory: what was re-run, on what, and what differed
RERUN_FILE = "rerun.json"


class RerunRecord(BaseModel):
    """``rerun.json``: the link from the new study back to the result it repeats."""

    original: str
    original_run_id: str
    config_hash: str
    seeds: dict[str, Any]
    runtime: str
    image: str | None
    original_image_digest: str | None
    image_digest_applied: bool
    differences_before: list[dict[str, Any]]
    differences_after: dict[str, list[dict[str, Any]]] = {}


@dataclass
class RerunPlan:
    """Everything decided before anything runs."""

    path: Path
    original: ExperimentResult
    runtime: str
    #: the reference handed to the runtime: ``repo@digest`` or the image id; None for local
    image: str | None
    loaded: LoadedConfig
    before: envdiff.EnvComparison
    notes: list[str] = field(default_factory=list)
    #: where the image was found: "here", "here, by image id", "in <registry>", podman's own
    image_source: str | None = None

    @property
    def digest_applied(self) -> bool:
        return self.image is not None


@dataclass
class RerunOutcome:
    study_dir: Path | None
    exit_code: int
    results: list[ExperimentResult]
    #: run id -> the new result's environment against the original's, every field
    after: dict[str, envdiff.EnvComparison]
    #: what should be identical and is not (config hash, seeds, image digest)
    mismatches: list[str]


# ------------------------------------------------------------------------------ plan


def load_original(path: Path) -> ExperimentResult:
    """The result to repeat (``result.json`` or its run directory), with its config hash
    checked; every problem is one line naming the file (exit 2)."""
    from llem.results.io import load_result

    file = path / RESULT_FILE if path.is_dir() else path
    if not file.exists():
        raise ConfigError(f"{file}: file not found")
    result = load_result(file)
    check_config_hash(result, file)
    return result


def check_config_hash(result: ExperimentResult, file: Path) -> None:
    recomputed = result.config.config_hash()
    if recomputed != result.config_hash:
        raise ConfigError(
            f"{file}: config_hash {result.config_hash} does not match its config (hash "
            f"{recomputed}): the file was edited, or written by an llem whose config had other "
            "fields; refusing to rerun something else"
        )


def plan(path: Path, runtime: str | None = None, cycles: int = 1,
         docker_client: Any = None) -> RerunPlan:
    """Load and check the original, choose the runtime (default: the original's) and, for a
    container runtime, the image by digest; then what differs here before the run.

    ``docker_client`` is for tests; by default the daemon's own."""
    original = load_original(path)
    env = original.environment
    chosen = runtime or env.runtime
    if chosen not in RUNTIMES:
        raise ConfigError(f"--runtime: '{chosen}' cannot rerun a result; choose from "
                          f"{', '.join(RUNTIMES)}")
    notes = []
    image = source = None
    if chosen == "local":
        if env.image_digest:
            notes.append(f"image digest {env.image_digest} is not applied: --runtime local "
                         "measures in this Python environment, not in the image")
    else:
        if not env.image_digest:
            raise ConfigError(
                f"{path}: the original ran without an image (runtime {env.runtime}), so there "
                f"is no digest to run on {chosen}; rerun it with --runtime local")
        if chosen == "docker":
            image, source = pinned_docker_image(env, docker_client)
        else:  # podman pulls by digest itself and refuses one it cannot find
            image, source = f"{_repository(env)}@{env.image_digest}", "podman pulls if missing"
    loaded = rerun_config(original, path, cycles)
    before = envdiff.before_run(env, original.config, chosen,
                                env.image_digest if image else None)
    return RerunPlan(path, original, chosen, image, loaded, before, notes, source)


def rerun_config(original: ExperimentResult, path: Path, cycles: int = 1) -> LoadedConfig:
    """The original's resolved config as a study of one experiment: nothing re-resolved
    from presets or defaults of this llem version, the provenance it was recorded with."""
    name = f"rerun-{original.config.name or original.experiment_id}"
    study = StudyConfig(name=name, base=original.config, study=StudyExecution(cycles=cycles))
    return LoadedConfig(study=study, is_study=cycles > 1, source=str(path),
                        provenance=dict(original.config_provenance))


def _repository(env: EnvironmentInfo) -> str:
    from llem.images.refs import split_ref

    if not env.image_ref:
        raise ConfigError("the original records an image digest but no image reference; "
                          "rerun it with --runtime local")
    return split_ref(env.image_ref)[0]


def pinned_docker_image(env: EnvironmentInfo, client: Any = None) -> tuple[str, str]:
    """(reference, where it is): ``repo@digest`` present here or in its registry, or the
    local image whose id is the digest (an image that came by ``docker load`` has no
    registry digest, and the harness then records its id); anything else is refused with
    one line (exit 2)."""
    from llem.images.base import ImageError
    from llem.images.refs import pull_auth
    from llem.images.registry import docker_client, local_image, registry_host
    from llem.runtimes.base import RuntimeUnavailable

    digest = env.image_digest
    assert digest is not None
    if client is None:
        try:
            client = docker_client()
        except ImageError as exc:
            raise RuntimeUnavailable(str(exc)) from None
    by_id = local_image(client, digest) if digest.startswith("sha256:") else None
    if by_id is not None and by_id.id == digest:
        return digest, "here, by image id"
    pinned = f"{_repository(env)}@{digest}"
    if local_image(client, pinned) is not None:
        return pinned, "here"
    try:  # the manifest only (no layers): is it there, and may we have it
        client.images.get_registry_data(pinned, auth_config=pull_auth())
    except Exception as exc:  # NotFound, APIError (auth), a registry that does not answer
        why = " ".join(str(getattr(exc, "explanation", None) or exc).split())[:160]
        raise ConfigError(
            f"image {pinned} is neither on this host nor in {registry_host(pinned)} ({why}): "
            "load it (`llem images load`), log in to its registry, or rerun with "
            "--runtime local") from None
    return pinned, f"in {registry_host(pinned)}, pulled by digest"


# ------------------------------------------------------------------------------- run


def execute(rplan: RerunPlan, results_dir: Path, console: Console | None = None,
            quiet: bool = False, runtime_factory: Any = None) -> RerunOutcome:
    """Run the plan through ``llem run``'s study runner into a new study directory, write
    ``rerun.json`` there, and compare what came out with the original."""
    from llem.results.io import load_results
    from llem.study import manifest as mf
    from llem.study.runner import run_study

    name = rplan.loaded.study.name
    earlier = mf.find_latest(results_dir, name)
    code = run_study(rplan.loaded, results_dir, quiet=quiet, console=console,
                     runtime_factory=runtime_factory or (lambda: make_runtime(rplan)))
    study_dir = mf.find_latest(results_dir, name)
    if study_dir is None or study_dir == earlier:
        return RerunOutcome(None, code, [], {}, [])
    results = [r for r in load_results(study_dir, skip_invalid=True)[0] if r.status == "ok"]
    after = {r.run_id: envdiff.compare(envdiff.flatten_env(rplan.original.environment),
                                       envdiff.flatten_env(r.environment)) for r in results}
    outcome = RerunOutcome(study_dir, code, results, after, mismatches(rplan, results))
    write_record(rplan, outcome)
    return outcome


def make_runtime(rplan: RerunPlan) -> Runtime:
    """The plan's runtime, with the pinned image instead of the config's image/registry/lock
    (the config itself stays as recorded, so its hash does not change)."""
    from llem.study.execute import make_runtime as by_name

    return by_name(rplan.runtime, backend=rplan.original.config.backend, image=rplan.image,
                   pull_policy="missing")


def mismatches(rplan: RerunPlan, results: list[ExperimentResult]) -> list[str]:
    """What a rerun promises to keep and did not (never expected: each is a bug or a
    tampered image store)."""
    orig = rplan.original
    out = []
    for r in results:
        if r.config_hash != orig.config_hash:
            out.append(f"{r.run_id}: config_hash {r.config_hash} != {orig.config_hash}")
        if envdiff.seeds(r.config) != envdiff.seeds(orig.config):
            out.append(f"{r.run_id}: seeds {envdiff.seeds(r.config)} != "
                       f"{envdiff.seeds(orig.config)}")
        if rplan.digest_applied and r.environment.image_digest != orig.environment.image_digest:
            out.append(f"{r.run_id}: image digest {r.environment.image_digest} != "
                       f"{orig.environment.image_digest}")
    return out


def write_record(rplan: RerunPlan, outcome: RerunOutcome) -> None:
    assert outcome.study_dir is not None
    orig = rplan.original
    record = RerunRecord(
        original=str(rplan.path.resolve()), original_run_id=orig.run_id,
        config_hash=orig.config_hash, seeds=envdiff.seeds(orig.config), runtime=rplan.runtime,
        image=rplan.image, original_image_digest=orig.environment.image_digest,
        image_digest_applied=rplan.digest_applied,
        differences_before=[_as_dict(d) for d in rplan.before.differences],
        differences_after={k: [_as_dict(d) for d in c.differences]
                           for k, c in outcome.after.items()},
    )
    atomic_write_json(outcome.study_dir / RERUN_FILE, record.model_dump(mode="json"))


def _as_dict(d: envdiff.Difference) -> dict[str, Any]:
    return {"key": d.key, "original": d.original, "rerun": d.now}


# --------------------------------------------------------------------------- compare


@dataclass
class MetricRow:
    key: str
    label: str
    unit: str
    comparison: RatioComparison | None
    #: why there is no comparison (a side has no value), from the metric registry
    reason: str | None = None


def original_runs(rplan: RerunPlan) -> tuple[list[ExperimentResult], str]:
    """The original's side of a comparison: every finished cycle of its configuration in its
    study (a bootstrap CI needs more than one value a side), else the one result."""
    from llem.results.io import is_study_dir, load_results

    file = rplan.path / RESULT_FILE if rplan.path.is_dir() else rplan.path
    study_dir = file.resolve().parent.parent.parent
    orig = rplan.original
    if is_study_dir(study_dir):
        same = [r for r in load_results(study_dir, skip_invalid=True)[0]
                if r.config_hash == orig.config_hash and r.status == "ok"]
        if same:
            return same, (f"{len(same)} run(s) of config {orig.config_hash[:8]} in "
                          f"{study_dir.name}")
    return [orig], str(file)


def compare_metrics(a: list[ExperimentResult], b: list[ExperimentResult],
                    metric_keys: list[str] | None = None, seed: int = 0) -> list[MetricRow]:
    """``llem results compare``'s statistic (ratio of means B/A with a bootstrap CI) for
    each metric; a metric either side did not measure gets the recorded reason instead."""
    from llem.results import metrics as registry
    from llem.results.compare import compare_ratio

    rows = []
    for key in metric_keys or list(registry.METRICS):
        d = registry.metric(key)
        va = [v for v in (d.get(r) for r in a) if v is not None]
        vb = [v for v in (d.get(r) for r in b) if v is not None]
        if not va or not vb:
            side = a if not va else b
            why = next((w for w in (d.reason(r) for r in side) if w), "not measured")
            rows.append(MetricRow(d.key, d.label, d.unit, None,
                                  f"{'original' if not va else 'rerun'}: {why}"))
            continue
        rows.append(MetricRow(d.key, d.label, d.unit,
                              compare_ratio(va, vb, metric_key=d.key, a_label="original",
                                            b_label="rerun", seed=seed)))
    return rows
