"""Load experiment/study YAML with presets and CLI overrides, tracking where values came from.

Precedence: CLI flag > config file > preset > built-in defaults. Every failure is a
:class:`ConfigError` with one line naming the file and field, which the CLI turns into
exit code 2 — never a traceback.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llem_schema.config import BACKENDS, ExperimentConfig
from llem_schema.errors import ConfigError, did_you_mean, format_validation_error
from llem_schema.study import StudyConfig, StudyExecution

PRESETS_FILE = Path(__file__).parent / "data" / "presets.yaml"
STUDY_KEYS = ("sweep", "study")


def presets() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(PRESETS_FILE.read_text("utf-8"))


@dataclass
class LoadedConfig:
    """A resolved study (a single experiment is a study with no sweep and one cycle)."""

    study: StudyConfig
    is_study: bool
    source: str
    #: dotted path -> "cli" | "file" | "preset:<name>" | "default"
    provenance: dict[str, str] = field(default_factory=dict)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping. PyYAML keeps the last one
    silently, so ``workload:`` written twice would drop the first block's settings from the
    measurement without a word. Keys brought in by a ``<<`` merge may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first given on line {first})",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _read_text(path: Path) -> str:
    """The config file's text, or one line naming it and why it cannot be read."""
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from None
    except NotADirectoryError:
        raise ConfigError(f"{path}: file not found (a part of this path is a file, not a "
                          "directory)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_yaml(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        kind = "error" if isinstance(exc, yaml.constructor.ConstructorError) else "syntax error"
        raise ConfigError(f"{path}: YAML {kind} at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {' '.join(str(exc).split())}") from None
    if data is None:
        raise ConfigError(f"{path}: file is empty; run 'llem config new' for a template")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "extra":
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def leaf_paths(data: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for k, v in data.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict) and v and k != "extra":
            paths += leaf_paths(v, p + ".")
        else:
            paths.append(p)
    return paths


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def load(
    path: Path | None,
    cli_overrides: dict[str, Any] | None = None,
    preset: str | None = None,
    data: dict[str, Any] | None = None,
) -> LoadedConfig:
    """Resolve a config file (or ``data``, the same mapping from Python; or nothing: the
    defaults) into a validated study.

    Precedence: CLI flag > file > preset > defaults; every leaf's source is recorded."""
    source = str(path) if path else ("<dict>" if data is not None else "<defaults>")
    raw = dict(data if data is not None else read_yaml(path) if path else {})
    study_section = raw.pop("study", None)
    sweep = raw.pop("sweep", None)
    is_study = study_section is not None or sweep is not None
    preset_name = preset or raw.pop("preset", None)
    raw.pop("preset", None)
    preset_data = _preset(preset_name, "command line" if preset else source)
    backend = next((b for b in ((cli_overrides or {}).get("backend"), raw.get("backend"),
                                preset_data.get("backend")) if b), "pytorch")
    cli_tree = _cli_tree({k.replace("@backend.", f"{backend}.", 1): v
                          for k, v in (cli_overrides or {}).items()})
    cli_study = cli_tree.pop("study", {})
    if cli_study:  # --cycles, --order, --fail-fast: the study section, CLI first
        study_section = deep_merge(study_section or {}, cli_study)
        is_study = True
    merged = deep_merge(deep_merge(preset_data, raw), cli_tree)
    cli_paths = leaf_paths(cli_tree) + [f"study.{p}" for p in leaf_paths(cli_study)]
    try:
        base = ExperimentConfig.model_validate(merged)
    except ValidationError as exc:
        where = _blame(exc, (), cli_paths, source)
        raise ConfigError(format_validation_error(exc, ExperimentConfig, where)) from None
    provenance = {p: "default" for p in leaf_paths(base.model_dump())}
    for layer, name in ((preset_data, f"preset:{preset_name}"), (raw, "file"), (cli_tree, "cli")):
        provenance.update({p: name for p in leaf_paths(layer)})
    provenance.update({f"study.{p}": "cli" for p in leaf_paths(cli_study)})
    study = _study(base, sweep, study_section, path, source, cli_paths)
    _preflight(study, is_study, source, cli_paths)
    return LoadedConfig(study=study, is_study=is_study, source=source, provenance=provenance)


def _preset(name: str | None, source: str) -> dict[str, Any]:
    if name is None:
        return {}
    all_presets = presets()
    if name not in all_presets:
        raise ConfigError(
            f"{source}: preset: unknown preset '{name}'"
            f"{did_you_mean(str(name), list(all_presets))}; choose from {', '.join(all_presets)}"
        )
    return all_presets[name]


def _cli_tree(cli_overrides: dict[str, Any] | None) -> dict[str, Any]:
    cli_tree: dict[str, Any] = {}
    for dotted, value in (cli_overrides or {}).items():
        if value is not None:
            _set(cli_tree, dotted, value)
    if "backend" in cli_tree and cli_tree["backend"] not in BACKENDS:
        raise ConfigError(
            f"--backend: unknown backend '{cli_tree['backend']}'"
            f"{did_you_mean(str(cli_tree['backend']), list(BACKENDS))}; choose from "
            f"{', '.join(BACKENDS)}"
        )
    return cli_tree


def _blame(exc: ValidationError, prefix: tuple[str, ...], cli_paths: Sequence[str],
           source: str) -> str:
    """Whom the error line names: the command line when a flag set the failing field
    (``--batch-size 0`` is not the config file's fault), else ``source``."""
    loc = ".".join(str(p) for p in (*prefix, *exc.errors()[0].get("loc", ())))
    if any(loc == p or loc.startswith(p + ".") for p in cli_paths):
        return "command line"
    return source


def _study(base: ExperimentConfig, sweep: Any, study_section: Any, path: Path | None,
           source: str, cli_paths: Sequence[str] = ()) -> StudyConfig:
    try:
        execution = StudyExecution.model_validate(study_section or {})
    except ValidationError as exc:
        where = _blame(exc, ("study",), cli_paths, source)
        raise ConfigError(
            format_validation_error(exc, StudyExecution, where, ("study",))
        ) from None
    if sweep is not None and not isinstance(sweep, dict):
        raise ConfigError(f"{source}: sweep: must map dotted paths to lists of values")
    for k, v in (sweep or {}).items():
        if not isinstance(v, list):
            raise ConfigError(f"{source}: sweep.{k}: must be a list of values, got {v!r}")
    try:
        return StudyConfig(name=base.name or (path.stem if path else "experiment"), base=base,
                           sweep=sweep or {}, study=execution)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, StudyConfig, source)) from None


def _preflight(study: StudyConfig, is_study: bool, source: str,
               cli_paths: Sequence[str] = ()) -> None:
    """Every sweep point validates, and the chosen engine can express each one, before
    anything runs or any container starts."""
    from llem.config import preflight
    from llem_schema.compat import validate_backend_config
    from llem_schema.study import expand_experiments

    experiments = [study.base]
    if is_study:
        try:
            experiments = expand_experiments(study)
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(exc, ExperimentConfig, f"{source} (sweep)")
            ) from None
    seen: set[str] = set()
    for exp in experiments:
        key = exp.config_hash()
        if key in seen:
            continue
        seen.add(key)
        problems = validate_backend_config(exp, None) + preflight.problems(exp)
        if problems:
            field = problems[0].split(":", 1)[0]
            if any(field == p or field.startswith(p + ".") for p in cli_paths):
                raise ConfigError(f"command line: {problems[0]}")
            where = f" ({exp.name})" if is_study and exp.name else ""
            raise ConfigError(f"{source}{where}: {problems[0]}")
