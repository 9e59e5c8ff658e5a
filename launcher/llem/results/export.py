"""Flatten results to one row per run and write Parquet, CSV, JSON or an HF dataset folder.

Columns: ids (study_id, experiment_id, run_id, cycle, status, config_hash, ...), the config
flattened to dotted columns (``config.workload.batch_size``), every metric group flattened
(``energy.total_j``, ``latency.ttft.p50_s``, ...) with the null reasons kept as JSON strings
(``energy.null_reasons``) so a null in a column can be explained, and an environment summary
(``env.gpu_name``, ``env.driver_version``, ...). Lists and the free-form ``config.extra``
are JSON strings so every column has one Arrow type across a study.

Every column with a unit names it in a suffix (:data:`UNIT_SUFFIX`): ``_j`` joules, ``_w``
watts, ``_s`` seconds (the latency distributions too: ``latency.itl.p99_s``; their count
``latency.itl.n`` has none), ``_bytes``, ``_per_s`` and ``_per_j`` for rates. Counts (tokens,
requests, FLOPs) and ratios (``warmup.final_cv``) carry none.

CSV keeps the column types a reader infers: floats are written with a decimal point or an
exponent (``2.0``, ``1e-05``), so a float column of whole numbers reads back as float, not
integer (pandas, ``pyarrow.csv``, R).

``aggregate(study_dir)`` rebuilds ``study.parquet`` and ``summary.json`` atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from llem_schema.atomic import atomic_write_bytes, atomic_write_text
from llem_schema.errors import ConfigError
from llem_schema.result import ExperimentResult

Format = Literal["parquet", "csv", "json", "hf-dataset"]
FORMATS: tuple[str, ...] = ("parquet", "csv", "json", "hf-dataset")
STUDY_PARQUET = "study.parquet"
SUMMARY_JSON = "summary.json"

#: the suffix a column carries for each unit of the metric registry
UNIT_SUFFIX: dict[str, str] = {"J": "_j", "W": "_w", "s": "_s", "B": "_bytes",
                               "tok/s": "_per_s", "tok/J": "_per_j", "FLOP/J": "_per_j"}

_ID_FIELDS = ("study_id", "experiment_id", "run_id", "cycle", "status", "config_hash", "backend",
              "model", "schema_version", "started_at", "finished_at")
_METRIC_GROUPS = ("energy", "prefill", "decode", "latency", "throughput", "flops", "memory")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = None
        for k, v in value.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k in ("null_reasons", "extra"):
                out[key] = json.dumps(v, sort_keys=True) if v else None
            else:
                _flatten(v, key, out)
    elif isinstance(value, list):
        out[prefix] = json.dumps(value) if value else None
    else:
        out[prefix] = value


def _latency_with_units(latency: dict[str, Any]) -> dict[str, Any]:
    """Latency distributions with the unit in each column name (``p50`` -> ``p50_s``); the
    unit is the registry's for latency (seconds), the sample count ``n`` keeps its name."""
    from llem.results.metrics import METRICS

    suffix = UNIT_SUFFIX[METRICS["ttft_p50"].unit]
    return {name: ({k if k == "n" else f"{k}{suffix}": v for k, v in stats.items()}
                   if isinstance(stats, dict) and name != "null_reasons" else stats)
            for name, stats in latency.items()}


def flatten_config(r: ExperimentResult) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    _flatten(r.config.model_dump(mode="json"), "config", cfg)
    return cfg


def flatten_result(r: ExperimentResult,
                   config_cache: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One flat row for one run (see module docstring for the columns).

    ``config_cache`` (config_hash + name -> flattened config) lets a study flatten each
    configuration once instead of once per cycle.
    """
    d = r.model_dump(mode="json", exclude={"config"})
    row: dict[str, Any] = {k: d[k] for k in _ID_FIELDS}
    row["experiment_name"] = r.config.name
    if config_cache is None:
        row.update(flatten_config(r))
    else:
        key = f"{r.config_hash}:{r.config.name}"
        if key not in config_cache:
            config_cache[key] = flatten_config(r)
        row.update(config_cache[key])
    d["latency"] = _latency_with_units(d["latency"])
    for group in _METRIC_GROUPS:
        _flatten(d[group], group, row)
    # metrics the registry derives (idle-adjusted J/token, tokens/J): every metric that
    # show/compare/pareto/plot know is a column too
    from llem.results.metrics import METRICS

    for m in METRICS.values():
        if m.column not in row:
            row[m.column] = m.get(r)
    _flatten(d["warmup"], "warmup", row)
    _flatten({k: v for k, v in d["setup"].items() if k != "notes"}, "setup", row)
    env = r.environment
    gpus = env.gpus
    row.update({
        "env.device": env.device,
        "env.gpu_count": len(gpus),
        "env.gpu_name": ", ".join(sorted({g.name for g in gpus})) or None,
        "env.gpu_uuids": ",".join(g.uuid for g in gpus if g.uuid) or None,
        "env.cuda_visible_devices": env.cuda_visible_devices,
        "env.gpu_power_limit_w": gpus[0].power_limit_w if gpus else None,
        "env.mig": any(bool(g.mig_mode) for g in gpus),
        "env.driver_version": env.driver_version,
        "env.cuda_driver_version": env.cuda_driver_version,
        "env.cuda_runtime_version": env.cuda_runtime_version,
        "env.runtime": env.runtime,
        "env.image_ref": env.image_ref,
        "env.image_digest": env.image_digest,
        "env.hostname": env.host.hostname,
        "env.cpu_model": env.host.cpu_model,
        "env.python": env.host.python,
        "env.packages": json.dumps(env.packages, sort_keys=True) if env.packages else None,
    })
    row["warnings"] = "\n".join(r.warnings) if r.warnings else None
    row["n_warnings"] = len(r.warnings)
    return row


def flatten_results(results: Iterable[ExperimentResult]) -> list[dict[str, Any]]:
    """Rows for many results, flattening each distinct configuration once."""
    cache: dict[str, dict[str, Any]] = {}
    return [flatten_result(r, cache) for r in results]


def to_table(rows: Sequence[dict[str, Any]]) -> Any:
    """A pyarrow Table from rows with possibly different keys; columns in first-seen order.

    A column whose values mix types Arrow cannot unify (e.g. int and str) becomes strings
    rather than failing the export.
    """
    import pyarrow as pa

    names: dict[str, None] = {}
    for row in rows:
        for k in row:
            names.setdefault(k, None)
    if rows and all(len(row) == len(names) for row in rows):
        try:  # fast path: every row has every column; Arrow infers the types in C++
            return pa.Table.from_pylist(list(rows))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    arrays = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[name] = pa.array([None if v is None else str(v) for v in values],
                                    type=pa.string())
    return pa.table(arrays)


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_parquet(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    atomic_write_bytes(path, _parquet_bytes(to_table(rows)))
    return path


def _csv_cell(value: Any) -> Any:
    """One CSV field: floats always with a decimal point or exponent (``repr``: shortest
    round-trip form), so ``2.0`` is not read back as the integer 2; null is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """CSV with the columns (and the types they unify to) of the Parquet export."""
    import csv
    import io

    table = to_table(rows)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows([_csv_cell(v) for v in row] for row in zip(*columns))
    atomic_write_text(path, buf.getvalue())
    return path


def write_json(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    atomic_write_text(path, json.dumps(list(rows), indent=1, default=str) + "\n")
    return path


_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
tags:
- llenergymeasure
- energy
- llm-inference
- benchmark
size_categories:
- {size}
---

# {title}

LLM inference measurements (energy, throughput, latency, FLOPs, memory) produced by
[llenergymeasure](https://github.com/llenergymeasure/llenergymeasure) (`llem`).

- **Rows:** {n_rows}, one per run (one experiment x one cycle)
- **Studies:** {studies}
- **Configurations:** {n_configs}
- **Backends:** {backends}
- **Models:** {models}
- **GPUs:** {gpus}
- **Result schema version:** {schema}

## Load

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_files="data/train-*.parquet", split="train")
# or: import pyarrow.parquet as pq; pq.read_table("data/train-00000-of-00001.parquet")
```

## Columns

- ids: `study_id`, `experiment_id`, `run_id`, `cycle`, `status`, `config_hash`
- `config.*`: the fully resolved experiment config, flattened (e.g. `config.workload.batch_size`)
- metric groups: `energy.*`, `prefill.*`, `decode.*`, `latency.*`, `throughput.*`, `flops.*`,
  `memory.*`. A column with a unit ends in it: `_j` joules, `_w` watts, `_s` seconds
  (`latency.ttft.p50_s`), `_bytes`, `_per_s`/`_per_j` rates; counts and FLOPs have none.
  A null metric is explained in the group's `*.null_reasons` column (JSON); it was not
  measured, never guessed.
- `env.*`: where it was measured (GPU, driver, CUDA, container image digest, host)

Energy is `energy.total_j` over the measured window, which repeats the workload
`setup.measured_passes` times; `energy.per_pass_j` is that total per workload pass (compare
this one across runs). `energy.adjusted_j` subtracts the idle baseline power
(`energy.baseline_power_w`) times the duration. `energy.method` names the meter (zeus,
nvml, codecarbon, rapl).

Statistics across cycles (mean, 95% BCa bootstrap CI) are not in this table; compute them
with `llem results aggregate`.
"""


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"


def write_hf_dataset(rows: Sequence[dict[str, Any]], out_dir: Path, *, title: str = "llem results",
                     force: bool = False) -> Path:
    """A folder loadable with ``datasets.load_dataset("parquet", data_files=...)`` and with a
    dataset card, ready for ``huggingface-cli upload``."""
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise ConfigError(f"{out_dir}: exists and is not empty; choose another -o or use --force")
    table = to_table(rows)
    data = out_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("train-*.parquet"):
        old.unlink()
    atomic_write_bytes(data / "train-00000-of-00001.parquet", _parquet_bytes(table))

    def distinct(col: str) -> str:
        vals = sorted({str(r[col]) for r in rows if r.get(col) is not None})
        return ", ".join(vals[:10]) + (f" (+{len(vals) - 10} more)" if len(vals) > 10 else "") \
            if vals else "—"

    atomic_write_text(out_dir / "README.md", _CARD.format(
        title=title, n_rows=len(rows), size=_size_category(len(rows)),
        studies=distinct("study_id"), n_configs=len({r.get("config_hash") for r in rows}),
        backends=distinct("backend"), models=distinct("model"), gpus=distinct("env.gpu_name"),
        schema=distinct("schema_version")))
    return out_dir


def export(results: Iterable[ExperimentResult], fmt: str, out: Path, *, title: str = "llem results",
           force: bool = False) -> tuple[Path, int]:
    """Write ``results`` in ``fmt``; returns (path written, number of rows)."""
    if fmt not in FORMATS:
        from llem_schema.errors import did_you_mean

        raise ConfigError(f"--format '{fmt}': unknown{did_you_mean(fmt, list(FORMATS))}; "
                          f"choose from {', '.join(FORMATS)}")
    rows = flatten_results(results)
    if not rows:
        raise ConfigError("nothing to export: no finished results found")
    if fmt != "hf-dataset" and out.is_dir():
        raise ConfigError(f"{out}: is a directory; give a file path for --format {fmt}")
    writer = {"parquet": write_parquet, "csv": write_csv, "json": write_json}
    if fmt == "hf-dataset":
        return write_hf_dataset(rows, out, title=title, force=force), len(rows)
    return writer[fmt](rows, out), len(rows)


class AggregateReport(BaseModel):
    study_dir: Path
    parquet: Path
    summary: Path
    n_results: int
    n_configs: int
    skipped: list[str]


def aggregate(study_dir: Path, *, skip_invalid: bool = False, n_resamples: int = 1000,
              seed: int = 0) -> AggregateReport:
    """Rebuild ``study.parquet`` (one row per run) and ``summary.json`` (per-config CIs).

    An invalid result stops the aggregation with its one-line error, unless
    ``skip_invalid``: then it is listed in the report and in summary.json's warnings.
    """
    from llem.results import io as results_io
    from llem.results import stats

    with results_io.gc_paused():
        results, skipped = results_io.load_results(study_dir, skip_invalid=skip_invalid)
        if not results:
            raise ConfigError(f"{study_dir}: no finished results to aggregate")
        rows = flatten_results(results)
        parquet = write_parquet(rows, study_dir / STUDY_PARQUET)
        del rows
        summary = stats.summarise(results, study_id=study_dir.name, n_resamples=n_resamples,
                                  seed=seed)
    summary.warnings.extend(f"skipped invalid result: {s}" for s in skipped)
    summary_path = study_dir / SUMMARY_JSON
    atomic_write_text(summary_path, summary.model_dump_json(indent=2) + "\n")
    return AggregateReport(study_dir=study_dir, parquet=parquet, summary=summary_path,
                           n_results=len(results), n_configs=len(summary.configs),
                           skipped=skipped)


def load_summary(study_dir: Path) -> Any:
    """summary.json if it is newer than every result and has every registry metric (one
    written before a metric was added lacks it), else a fresh in-memory summary."""
    from llem.results import io as results_io
    from llem.results import stats
    from llem.results.metrics import METRICS

    path = study_dir / SUMMARY_JSON
    if path.exists():
        mtime = path.stat().st_mtime
        newest = max((p.stat().st_mtime for p in study_dir.glob("*/cycle-*/result.json")),
                     default=0.0)
        if newest <= mtime:
            try:
                cached = stats.StudySummary.model_validate_json(path.read_text("utf-8"))
            except ValueError:
                cached = None
            if cached is not None and all(set(METRICS) <= set(c.metrics)
                                          for c in cached.configs):
                return cached
    results, _ = results_io.load_results(study_dir)
    if not results:
        raise ConfigError(f"{study_dir}: no finished results yet")
    return stats.summarise(results, study_id=study_dir.name)
