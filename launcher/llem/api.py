"""llem from Python, for notebooks and pipelines: the same runs as ``llem run``, typed results.

    import llem
    result = llem.run_experiment({"model": "builtin:tiny-llama", "workload": {"batch_size": 2}},
                                 runtime="local")
    print(result.throughput.output_tokens_per_s, result.energy.per_output_token_j)
    study = llem.run_study("examples/sweep.yaml", runtime="local")
    df = llem.load_results(study.study_dir)      # one row per run, pandas

Configs are a YAML path, a mapping shaped like the YAML, or an :class:`ExperimentConfig`;
errors are the CLI's one-line :class:`ConfigError` messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llem_schema.config import ExperimentConfig
from llem_schema.errors import ConfigError
from llem_schema.result import ExperimentResult

ConfigLike = str | Path | dict[str, Any] | ExperimentConfig


@dataclass
class StudyRun:
    """What :func:`run_study` returns: where the study is, how it ended, its results."""

    study_dir: Path
    exit_code: int
    results: list[ExperimentResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _loaded(config: ConfigLike, runtime: str | None, overrides: dict[str, Any] | None) -> Any:
    from llem.config.loader import load

    flags = dict(overrides or {})
    if runtime is not None:
        flags["runtime.runtime"] = runtime
    if isinstance(config, ExperimentConfig):
        return load(None, flags, data=config.model_dump(mode="json"))
    if isinstance(config, dict):
        return load(None, flags, data=config)
    return load(Path(config), flags)


def run_study(config: ConfigLike, results_dir: str | Path = "results", *,
              runtime: str | None = None, overrides: dict[str, Any] | None = None,
              resume: bool = False, quiet: bool = True) -> StudyRun:
    """Run (or resume) a study or a single experiment; returns its directory and results."""
    from rich.console import Console

    from llem.results.io import load_results
    from llem.study import manifest as mf
    from llem.study.runner import run_study as _run

    loaded = _loaded(config, runtime, overrides)
    results_dir = Path(results_dir)
    code = _run(loaded, results_dir, quiet=quiet, resume=resume,
                console=Console(quiet=quiet, stderr=True))
    study_dir = mf.find_latest(results_dir, loaded.study.name)
    if study_dir is None:
        raise ConfigError(f"{results_dir}: the study '{loaded.study.name}' left no directory")
    return StudyRun(study_dir, code, load_results(study_dir, skip_invalid=True)[0])


def run_experiment(config: ConfigLike, results_dir: str | Path = "results", *,
                   runtime: str | None = None, overrides: dict[str, Any] | None = None,
                   quiet: bool = True) -> ExperimentResult:
    """Run one experiment (one cycle) and return its result; a study config is refused."""
    loaded = _loaded(config, runtime, overrides)
    if loaded.is_study:
        raise ConfigError(f"{loaded.source}: a study (sweep/study section); use llem.run_study")
    run = run_study(config, results_dir, runtime=runtime, overrides=overrides, quiet=quiet)
    if not run.results:
        raise ConfigError(f"{run.study_dir}: the run failed (exit {run.exit_code}); see its "
                          "harness.log")
    return run.results[0]


def load_results(path: str | Path) -> Any:
    """Every run under a study (or results) directory as a pandas DataFrame, one row per run,
    with the columns of ``llem results export`` (ids, config, metrics, environment)."""
    from llem.results.export import flatten_results, to_table
    from llem.results.io import load_results as _load

    results, _ = _load(Path(path), skip_invalid=True)
    return to_table(flatten_results(results)).to_pandas()
