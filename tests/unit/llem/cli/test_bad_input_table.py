"""Issue 15: bad inputs and faults, each through the real CLI (``python -m llem.cli`` in its
own process), each refused with its exit code and one line naming the culprit, no
traceback, and nothing lost.

A pre-flight case (the default) must also leave the test's directory exactly as it was:
no study directory, no results, no file written. A fault case works on a copy of a study
that really ran (one run finished, one failed at run time) and must keep every file that
study had; what it must report is checked per case.

Filesystem faults are real, not mocked: a case with ``as_nobody`` runs the CLI in a new
user namespace (``unshare --user``) where the process is the unmapped user, so a file of
mode 000 is unreadable even when the tests run as root. The namespace goes with the
process, so the test's directory is left as it was.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llem.config.preflight import MAX_RUNS_UNCONFIRMED
from tests.conftest import llem_cmd, subprocess_env
from tests.unit.llem.config.hub_cache import write_hub_cache

#: a two-run study: the first finishes, the second fails at run time (a hub dataset that
#: cannot be fetched offline), the failure kept as it is (no retry)
FINISHED_YAML = """\
name: finished
model: builtin:tiny-llama
runtime: {runtime: local}
workload: {num_prompts: 2, batch_size: 2}
decoding: {max_new_tokens: 4}
measurement: {baseline_seconds: 0, warmup_max_runs: 1, warmup_min_runs: 0,
              min_window_seconds: 0, flops: false, timeseries: false, prefill_split: false}
sweep: {workload.dataset: [builtin:prompts, no-such-org/no-such-set]}
study: {max_retries: 0}
"""
RUN = ("run", "{cfg}", "--runtime", "local", "--results-dir", "{results}", "-q")
RUN_OK = ("run", "--model", "builtin:tiny-llama", "--runtime", "local",
          "--results-dir", "{results}", "-q")


@dataclass(frozen=True)
class Case:
    """One bad input: the command (placeholders ``{cfg}``, ``{tmp}``, ``{results}``,
    ``{study}``), what its one line must contain, and how it is set up and checked."""

    args: tuple[str, ...]
    expect: tuple[str, ...]
    yaml: str | None = None  # written to {cfg}
    setup: Callable[[Path], None] | None = None
    code: int = 2
    study: bool = False  # a copy of the finished study at {study}
    fault: bool = False  # after runs finished: may update the study, must keep its files
    check: Callable[[subprocess.CompletedProcess[str], Path], None] | None = None
    #: run as the unmapped user of a new user namespace (root's permissions do not apply)
    as_nobody: bool = False
    env: tuple[tuple[str, str], ...] = ()  # extra environment (placeholders filled)


def cfg(yaml: str, *expect: str, **kw: object) -> Case:
    return Case(RUN, expect, yaml=yaml, **kw)  # type: ignore[arg-type]


def cli(args: tuple[str, ...], *expect: str, **kw: object) -> Case:
    return Case(args, expect, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ set-ups


def _write(rel: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return setup


def _mkdir(rel: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / rel).mkdir(parents=True)


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _parquet(tmp: Path) -> None:
    pq.write_table(pa.table({"id": [1, 2], "question": ["a?", "b?"]}), tmp / "data.parquet")


def _unreadable(tmp: Path) -> None:
    (tmp / "exp.yaml").write_text("model: builtin:tiny-llama\n")
    (tmp / "exp.yaml").chmod(0)


def _hub_cached(tmp: Path) -> None:
    """org/set in the datasets cache of HF_HOME={tmp}/hf-cache, as a first load leaves it."""
    write_hub_cache(tmp / "hf-cache" / "datasets", "org/set",
                    {"question": ["a?", "b?"], "answer": ["1", "2"]})


def _newer_study_named_alike(tmp: Path) -> None:
    """A newer study 'finished-big' beside 'finished': --resume must not pick it."""
    other = tmp / "results" / "finished-big-20991231-000000"
    other.mkdir(parents=True)
    (other / "manifest.json").write_text(json.dumps({
        "study_id": other.name, "name": "finished-big", "study_hash": "0" * 16,
        "created_at": "2099-12-31T00:00:00+00:00", "runs": []}))


def _symlink_loop(tmp: Path) -> None:
    """A run whose result.json is a symlink to itself (a copy tool gone wrong)."""
    run = _study_dir(tmp) / "e001-loop" / "cycle-0"
    run.mkdir(parents=True)
    (run / "result.json").symlink_to("result.json")


def _nan_metric(tmp: Path) -> None:
    """The finished run's throughput is NaN (json.dumps writes it; a bad meter can)."""
    (path,) = _study_dir(tmp).glob(DONE_RESULT)
    data = json.loads(path.read_text())
    data["throughput"]["output_tokens_per_s"] = float("nan")
    path.write_text(json.dumps(data))


def _edited_result(tmp: Path) -> None:
    """The finished run's result.json changed after the run (still valid JSON and schema)."""
    (path,) = _study_dir(tmp).glob(DONE_RESULT)
    data = json.loads(path.read_text())
    data["throughput"]["output_tokens_per_s"] = 1.0e9
    path.write_text(json.dumps(data))


def _delete(*patterns: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for pattern in patterns:
            for path in _study_dir(tmp).glob(pattern):
                path.unlink()
    return setup


def _sweep(n_axes: int, n_values: int, cycles: int = 1) -> str:
    axes = ("workload.seed", "decoding.seed", "workload.traffic.seed")[:n_axes]
    values = list(range(n_values))
    return f"sweep: {dict.fromkeys(axes, values)}\nstudy: {{cycles: {cycles}}}\n".replace("'", "")


def _damage(*patterns: str, text: str = "") -> Callable[[Path], None]:
    """Overwrite files of the copied study: with ``text``, or cut to their first 100 bytes
    (a copy or a write cut short)."""
    def setup(tmp: Path) -> None:
        for pattern in patterns:
            (path,) = _study_dir(tmp).glob(pattern)
            path.write_text(text or path.read_text()[:100])
    return setup


def _study_dir(tmp: Path) -> Path:
    """The copy of the finished study (a case may put other studies beside it)."""
    return next(d for d in sorted((tmp / "results").iterdir())
                if re.fullmatch(r"finished-\d{8}-\d{6}(-\d+)?", d.name))


DONE_RUN = "e000-*/cycle-0"
DONE_RESULT = f"{DONE_RUN}/result.json"


# ------------------------------------------------------------------------ checks


def _result_is_valid(tmp: Path) -> None:
    from llem.results.io import load_result

    (done,) = _study_dir(tmp).glob(DONE_RESULT)
    assert load_result(done).run_id


def _rebuilt_and_counted(p: subprocess.CompletedProcess[str], tmp: Path) -> None:
    assert "2 run(s): 1 done, 0 running, 1 failed" in p.stdout, p.stdout
    json.loads((_study_dir(tmp) / "manifest.json").read_text())  # readable again
    _result_is_valid(tmp)


def _resumed_nothing_lost(p: subprocess.CompletedProcess[str], tmp: Path) -> None:
    """Found despite its manifest; nothing to run (one done, one failed without retries)."""
    assert "2 run(s) (1 done)" in p.stdout and "1/2 run(s) done, 1 failed" in p.stdout, p.stdout
    _result_is_valid(tmp)


def _damaged_is_pending(p: subprocess.CompletedProcess[str], tmp: Path) -> None:
    assert "2 run(s): 0 done, 0 running, 1 failed, 0 interrupted, 1 pending" in p.stdout, p.stdout


def _counted(p: subprocess.CompletedProcess[str], tmp: Path) -> None:
    """Status of the intact study: nothing lost, whatever was damaged around it."""
    assert "2 run(s): 1 done, 0 running, 1 failed, 0 interrupted, 0 pending" in p.stdout, p.stdout
    _result_is_valid(tmp)


def _other_study_untouched(p: subprocess.CompletedProcess[str], tmp: Path) -> None:
    _resumed_nothing_lost(p, tmp)
    other = tmp / "results" / "finished-big-20991231-000000"
    assert sorted(x.name for x in other.iterdir()) == ["manifest.json"]


def _damaged_runs_again(p: subprocess.CompletedProcess[str], tmp: Path) -> None:
    assert "e000-" in p.stdout and "1/2 run(s) done, 1 failed" in p.stdout, p.stdout
    _result_is_valid(tmp)  # measured again, the failed run left as it was


# ------------------------------------------------------------------------ the table

CASES: dict[str, Case] = {
    # unknown keys, with a did-you-mean
    "unknown-top-key": cfg("modle: builtin:tiny-llama\n", "modle", "did you mean 'model'"),
    "unknown-nested-key": cfg("workload: {batchsize: 4}\n", "workload.batchsize",
                              "did you mean 'batch_size'"),
    "unknown-deep-key": cfg("workload: {traffic: {mdoe: poisson}}\n", "workload.traffic.mdoe",
                            "did you mean 'mode'"),
    "unknown-study-key": cfg("study: {cylces: 3}\n", "study.cylces", "did you mean 'cycles'"),
    "unknown-backend-key": cfg("pytorch: {dtpye: float16}\n", "pytorch.dtpye",
                               "did you mean 'dtype'"),
    "unknown-preset-in-file": cfg("preset: quik-test\n", "preset", "did you mean 'quick-test'"),
    # wrong types and out-of-range values
    "bool-for-number": cfg("workload: {batch_size: true}\n", "workload.batch_size",
                           "boolean true"),
    "string-for-int": cfg("workload: {batch_size: four}\n", "workload.batch_size", "'four'"),
    "float-for-int": cfg("workload: {batch_size: 2.5}\n", "workload.batch_size", "fractional"),
    "negative": cfg("workload: {batch_size: -2}\n", "workload.batch_size", "-2"),
    "zero": cfg("workload: {num_prompts: 0}\n", "workload.num_prompts", "(got 0)"),
    "inf-for-int": cfg("workload: {batch_size: .inf}\n", "workload.batch_size", "finite"),
    "nan": cfg("decoding: {temperature: .nan}\n", "decoding.temperature", "finite"),
    "inf-window": cfg("measurement: {min_window_seconds: .inf}\n",
                      "measurement.min_window_seconds", "finite"),
    "inf-timeout": cfg("runtime: {timeout_seconds: .inf}\n", "runtime.timeout_seconds",
                       "finite"),
    "inf-cooldown": cfg("study: {cooldown_seconds: .inf}\n", "study.cooldown_seconds", "finite"),
    "inf-poisson-rate": cfg("workload: {traffic: {mode: poisson, rate: .inf}}\n",
                            "workload.traffic.rate", "finite"),
    "huge-batch": cfg("workload: {batch_size: 100000000000000000000}\n",
                      "workload.batch_size", "less than or equal to 1000000"),
    "num-prompts-1e9": cfg("workload: {num_prompts: 1.0e+9}\n", "workload.num_prompts",
                           "less than or equal to 1000000"),
    "num-prompts-1e9-as-text": cfg("workload: {num_prompts: 1e9}\n", "workload.num_prompts",
                                   "'1e9'"),
    "huge-seed": cfg("decoding: {seed: 100000000000000000000000}\n", "decoding.seed"),
    "negative-seed": cfg("workload: {seed: -1}\n", "workload.seed", "(got -1)"),
    "past-model-positions": cfg("decoding: {max_new_tokens: 4000}\n",
                                "decoding.max_new_tokens", "2048 positions"),
    "synthetic-longer-than-max-input": cfg("workload: {dataset: synthetic, input_len: 512}\n",
                                           "workload.input_len", "max_input_tokens"),
    "min-over-max-new-tokens": cfg("decoding: {min_new_tokens: 9, max_new_tokens: 8}\n",
                                   "decoding.min_new_tokens"),
    "beam-without-beams": cfg("decoding: {strategy: beam}\n", "decoding.num_beams"),
    "poisson-without-rate": cfg("workload: {traffic: {mode: poisson}}\n",
                                "workload.traffic.rate"),
    "dynamic-without-budget": cfg("workload: {batching: dynamic}\n", "workload.token_budget"),
    "warmup-min-over-max": cfg("measurement: {warmup_min_runs: 5, warmup_max_runs: 2}\n",
                               "measurement.warmup_min_runs"),
    "empty-model": cfg("model: ''\n", "model", "must not be empty"),
    "empty-dataset": cfg("workload: {dataset: ''}\n", "workload.dataset", "name a dataset"),
    # bad enums
    "bad-backend": cfg("backend: onnx\n", "backend", "'onnx'"),
    "bad-order": cfg("study: {order: random}\n", "study.order", "'random'"),
    "bad-dtype": cfg("pytorch: {dtype: float8}\n", "pytorch.dtype", "'float8'"),
    "bad-traffic-mode": cfg("workload: {traffic: {mode: burst}}\n", "workload.traffic.mode",
                            "'burst'"),
    "bad-energy-backend": cfg("measurement: {energy_backend: joules}\n",
                              "measurement.energy_backend", "'joules'"),
    "bad-carbon-region": cfg("measurement: {carbon_region: 'France!!'}\n",
                             "measurement.carbon_region", "alpha-3"),
    # the file itself
    "duplicate-top-key": cfg("workload: {batch_size: 2}\nworkload: {num_prompts: 4}\n",
                             "duplicate key 'workload'", "line 2"),
    "duplicate-nested-key": cfg("workload:\n  batch_size: 2\n  batch_size: 8\n",
                                "duplicate key 'batch_size'", "line 3"),
    "malformed-yaml": cfg("workload:\n  batch_size: [1, 2\n", "YAML syntax error", "line 3"),
    "tab-indent": cfg("workload:\n\tbatch_size: 2\n", "YAML syntax error", "'\\t'"),
    "empty-file": cfg("", "file is empty", "llem config new"),
    "comments-only": cfg("# nothing here\n", "file is empty"),
    "list-top-level": cfg("- a\n- b\n", "top level must be a mapping", "list"),
    "scalar-top-level": cfg("just some text\n", "top level must be a mapping", "str"),
    "not-utf8": cli(RUN, "not UTF-8", setup=_write("exp.yaml", b"model: \xff\xfe\n")),
    "missing-config": cli(("run", "{tmp}/nope.yaml", "--results-dir", "{results}"),
                          "nope.yaml", "file not found"),
    "directory-for-config": cli(("run", "{tmp}/d.yaml", "--results-dir", "{results}"),
                                "d.yaml", "is a directory", setup=_mkdir("d.yaml")),
    "config-under-a-file": cli(("run", "{tmp}/afile/exp.yaml", "--results-dir", "{results}"),
                               "afile/exp.yaml", "a part of this path is a file",
                               setup=_write("afile", "x")),
    "unreadable-config": cli(RUN, "exp.yaml", "is not readable", setup=_unreadable,
                             as_nobody=True),
    # sweeps
    "sweep-unknown-path": cfg("sweep: {workload.bsz: [1, 2]}\n", "workload.bsz",
                              "has no field 'bsz'"),
    "sweep-path-typo": cfg("sweep: {workload.batchsz: [1, 2]}\n", "workload.batchsz",
                           "did you mean 'batch_size'"),
    "sweep-empty-list": cfg("sweep: {workload.batch_size: []}\n", "workload.batch_size",
                            "at least one value"),
    "sweep-not-a-list": cfg("sweep: {workload.batch_size: 4}\n", "sweep.workload.batch_size",
                            "must be a list"),
    "sweep-not-a-mapping": cfg("sweep: [1, 2]\n", "sweep", "dotted paths"),
    "sweep-bad-value": cfg("sweep: {workload.batch_size: [1, 0]}\n", "(sweep)",
                           "workload.batch_size", "(got 0)"),
    "sweep-over-limit": cfg(_sweep(3, 11), "sweep", "1331 runs", "--yes"),
    "sweep-cycles-over-limit": cfg(_sweep(1, 501, cycles=3), "sweep", "3 cycle(s) = 1503 runs",
                                   "--yes"),
    # flags
    "gpus-not-on-host": cli((*RUN_OK, "--gpus", "99"), "runtime.gpus", "GPU 99"),
    "study-gpus-not-on-host": cfg("study: {gpus: [99]}\n", "study.gpus", "GPU 99"),
    "study-gpu-twice": cfg("study: {gpus: [0, 0]}\n", "study.gpus", "twice"),
    "gpus-empty-id": cli((*RUN_OK, "--gpus", "0,,1"), "runtime.gpus", "''"),
    "gpus-negative": cfg("runtime: {gpus: [-1]}\n", "runtime.gpus", "negative"),
    "lock-missing": cli((*RUN_OK, "--lock", "{tmp}/llem.lock"), "--lock", "llem.lock",
                        "not found"),
    "resume-and-fresh": cli((*RUN_OK, "--resume", "--fresh"), "--resume", "--fresh"),
    "resume-nothing": cli((*RUN_OK, "--resume"), "--resume", "no earlier study"),
    "flag-out-of-range": cli((*RUN_OK, "--batch-size", "0"), "command line",
                             "workload.batch_size"),
    "flag-not-a-number": cli((*RUN_OK, "--batch-size", "four"), "--batch-size"),
    "flag-inf": cli((*RUN_OK, "--temperature", "inf"), "decoding.temperature", "finite"),
    "flag-temperature-greedy": cli((*RUN_OK, "--temperature", "0.5"), "command line",
                                   "decoding.temperature", "no effect with greedy decoding",
                                   "set decoding.strategy: sampling"),
    "flag-huge-num-prompts": cli((*RUN_OK, "-n", "1000000000"), "workload.num_prompts",
                                 "1000000"),
    "flag-bad-backend": cli((*RUN_OK, "--backend", "tensorflow"), "--backend",
                            "unknown backend"),
    "flag-bad-preset": cli((*RUN_OK, "--preset", "benchmrk"), "preset",
                           "did you mean 'benchmark'"),
    "flag-bad-executor": cli((*RUN_OK, "--executor", "bogus"), "--executor", "'bogus'"),
    "flag-bad-cuda": cli((*RUN_OK, "--cuda", "twelve"), "--cuda", "'twelve'"),
    "flag-unknown": cli((*RUN_OK, "--bogus"), "No such option: --bogus"),
    # where results go
    "results-dir-is-a-file": cli(("run", "--runtime", "local", "--results-dir", "{tmp}/afile"),
                                 "afile", "Not a directory", setup=_write("afile", "x")),
    "results-dir-under-a-file": cli(
        ("run", "--runtime", "local", "--results-dir", "{tmp}/afile/results"),
        "afile/results", "Not a directory", setup=_write("afile", "x")),
    "name-too-long": cli(("run", "--runtime", "local", "--results-dir", "{tmp}/" + "n" * 300),
                         "nnnnnnnn", "too long"),
    # the model
    "unknown-builtin": cfg("model: builtin:nope\n", "model", "unknown builtin 'nope'"),
    "model-path-missing": cfg("model: {tmp}/no-such-model\n", "model", "does not exist"),
    "model-dir-without-config": cfg("model: {tmp}/m\n", "model", "has no config.json",
                                    setup=_mkdir("m")),
    "model-config-not-json": cfg("model: {tmp}/m\n", "config.json", "not valid JSON",
                                 setup=_write("m/config.json", "{oops")),
    # the dataset (Task A: columns from the header, before any run)
    "dataset-missing": cfg("workload: {dataset: '{tmp}/missing.jsonl'}\n", "workload.dataset",
                           "file not found"),
    "dataset-is-a-directory": cfg("workload: {dataset: '{tmp}/ds.jsonl'}\n",
                                  "workload.dataset", "is a directory", setup=_mkdir("ds.jsonl")),
    "dataset-column-missing-jsonl": cfg(
        "workload: {dataset: '{tmp}/data.jsonl', dataset_column: body}\n",
        "workload.dataset_column", "'body'", "data.jsonl", "columns: prompt, id",
        setup=_write("data.jsonl", _jsonl([{"prompt": "hi", "id": 1}]))),
    "dataset-column-missing-json": cfg(
        "workload: {dataset: '{tmp}/data.json', dataset_column: body}\n",
        "workload.dataset_column", "'body'", "data.json", "columns: text",
        setup=_write("data.json", json.dumps([{"text": "hi"}, {"text": "yo"}]))),
    "dataset-column-missing-csv": cfg(
        "workload: {dataset: '{tmp}/data.csv', dataset_column: body}\n",
        "workload.dataset_column", "'body'", "data.csv", "columns: id, prompt_text",
        setup=_write("data.csv", "id,prompt_text\n1,hello\n")),
    "dataset-column-missing-parquet": cfg(
        "workload: {dataset: '{tmp}/data.parquet', dataset_column: body}\n",
        "workload.dataset_column", "'body'", "data.parquet", "columns: id, question",
        setup=_parquet),
    "dataset-no-prompt-column": cfg(
        "workload: {dataset: '{tmp}/data.csv'}\n", "workload.dataset", "data.csv",
        "no prompt column", "id, body", setup=_write("data.csv", "id,body\n1,hello\n")),
    "dataset-format-columns-missing": cfg(
        "workload: {dataset: '{tmp}/data.jsonl', dataset_format: sharegpt}\n",
        "workload.dataset_format", "conversations", "data.jsonl",
        setup=_write("data.jsonl", _jsonl([{"prompt": "hi"}]))),
    "dataset-hub-column-missing": cfg(
        "workload: {dataset: org/set, dataset_column: body}\n", "workload.dataset_column",
        "'body' is not a column of org/set", setup=_hub_cached,
        env=(("HF_HOME", "{tmp}/hf-cache"),)),
    "dataset-hub-split-missing": cfg(
        "workload: {dataset: org/set, dataset_split: test}\n", "workload.dataset_split",
        "split 'test' is not in org/set", setup=_hub_cached,
        env=(("HF_HOME", "{tmp}/hf-cache"),)),
    "dataset-not-json": cfg("workload: {dataset: '{tmp}/data.jsonl'}\n", "data.jsonl",
                            "cannot be read as jsonl", setup=_write("data.jsonl", "{not json\n")),
    "dataset-empty-file": cfg("workload: {dataset: '{tmp}/data.csv'}\n", "data.csv",
                              "the file is empty", setup=_write("data.csv", "")),
    "dataset-not-parquet": cfg("workload: {dataset: '{tmp}/data.parquet'}\n", "data.parquet",
                               "cannot be read as parquet",
                               setup=_write("data.parquet", b"not parquet")),
    # backend options under extra:
    "extra-shadows-a-field": cfg("extra: {max_new_tokens: 5}\n", "extra.max_new_tokens",
                                 "decoding.max_new_tokens"),
    "extra-sampling-for-pytorch": cfg("extra: {sampling: {top_k: 5}}\n", "extra.sampling"),
    "extra-not-a-mapping": cfg("extra: [1]\n", "extra", "dictionary"),
    "registry-credentials": cfg("runtime: {registry: 'me:s3cr3t@reg.example:5000'}\n",
                                "runtime.registry", "credentials"),
    # other commands
    "config-show-missing": cli(("config", "show", "{tmp}/nope.yaml"), "nope.yaml",
                               "file not found"),
    "config-new-exists": cli(("config", "new", "-o", "{tmp}/exp.yaml"), "exp.yaml",
                             "already exists", setup=_write("exp.yaml", "x")),
    "config-schema-unknown": cli(("config", "schema", "bogus"), "schema", "'bogus'"),
    "results-show-unknown": cli(("results", "show", "nope", "--results-dir", "{results}"),
                                "nope", "no study or run"),
    "results-export-under-a-file": cli(
        ("results", "export", "{study}", "-o", "{tmp}/afile/x.parquet"), "-o",
        "afile is a file, not a directory", study=True, setup=_write("afile", "x")),
    "results-export-bad-format": cli(("results", "export", "{study}", "-f", "xlsx"), "--format",
                                     "'xlsx'", study=True),
    "results-compare-unknown-metric": cli(
        ("results", "compare", "{study}", "{study}", "-m", "bogus"), "unknown metric 'bogus'",
        study=True),
    "study-status-no-manifest": cli(("study", "status", "{tmp}"), "no manifest.json"),
    "study-status-nothing-readable": cli(
        ("study", "status", "{study}"), "manifest.json", "unreadable", "study.json",
        study=True, setup=_damage("manifest.json", "study.json", text="garbage")),
    # faults after runs finished: nothing lost, the damage named, the rest counted
    "corrupt-manifest": cli(("study", "status", "{study}"), "manifest.json", "rebuilt",
                            code=0, study=True, fault=True,
                            setup=_damage("manifest.json", text="{x"),
                            check=_rebuilt_and_counted),
    "resume-with-corrupt-manifest": Case(
        ("run", "{cfg}", "--resume", "--results-dir", "{results}", "-q"),
        ("manifest.json", "rebuilt"), yaml=FINISHED_YAML, code=1, study=True, fault=True,
        setup=_damage("manifest.json", text="{x"), check=_resumed_nothing_lost),
    "truncated-result-not-done": cli(
        ("study", "status", "{study}"), "result.json", "not valid JSON", code=0, study=True,
        fault=True, setup=_damage(DONE_RESULT), check=_damaged_is_pending),
    "truncated-result-show": cli(
        ("results", "show", "{done}"), "result.json", "not valid JSON", study=True,
        fault=True, setup=_damage(DONE_RESULT)),
    "corrupt-manifest-results-still-shown": cli(
        ("results", "show", "{done}"), "cycle-0", "builtin:tiny-llama", code=0, study=True,
        fault=True, setup=_damage("manifest.json", text="garbage"),
        check=lambda p, tmp: _result_is_valid(tmp)),
}


def test_table_is_large_and_distinct() -> None:
    assert len(CASES) >= 60
    keys = [(c.args, c.yaml, c.expect) for c in CASES.values()]
    assert len(set(keys)) == len(keys)


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(study dir, CLI output) of the study of :data:`FINISHED_YAML`, run for real once."""
    tmp = tmp_path_factory.mktemp("finished")
    (tmp / "finished.yaml").write_text(FINISHED_YAML)
    env = subprocess_env() | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf-home"),
                              "COLUMNS": "400"}
    p = subprocess.run([*llem_cmd(), "run", str(tmp / "finished.yaml"), "--results-dir",
                        str(tmp / "results"), "-q"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 1, (p.stdout, p.stderr)
    (study,) = (tmp / "results").iterdir()
    return study, p.stdout + p.stderr


def _tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` (the HF home the tests set aside) -> its size."""
    return {str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1
            for p in root.rglob("*") if "hf-home" not in p.parts}


def _fill(text: str, tmp: Path) -> str:
    study = next((tmp / "results").iterdir(), tmp / "results") if (tmp / "results").is_dir() \
        else tmp / "results"
    done = next(study.glob(DONE_RUN), study)
    return (text.replace("{cfg}", str(tmp / "exp.yaml")).replace("{tmp}", str(tmp))
            .replace("{results}", str(tmp / "results")).replace("{study}", str(study))
            .replace("{done}", str(done)))


def _nobody_prefix(tmp: Path) -> list[str]:
    """``unshare --user`` where this kernel allows it (the test's directories opened to the
    unmapped user, as a user's own directory would be); skip where it does not."""
    probe = subprocess.run(["unshare", "--user", "true"], capture_output=True, timeout=30) \
        if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no unprivileged user namespaces here (unshare --user)")
    for d in (tmp, *tmp.parents):
        if d == Path("/"):
            break
        d.chmod(d.stat().st_mode | 0o005)
    return ["unshare", "--user"]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    prefix = _nobody_prefix(tmp_path) if case.as_nobody else []
    if case.study:
        study, _ = request.getfixturevalue("finished_study")
        shutil.copytree(study, tmp_path / "results" / study.name)
    if case.setup:
        case.setup(tmp_path)
    if case.yaml is not None:
        (tmp_path / "exp.yaml").write_text(_fill(case.yaml, tmp_path))
    before = _tree(tmp_path)
    args = [_fill(a, tmp_path) for a in case.args]
    extra = {k: _fill(v, tmp_path) for k, v in case.env}
    p = subprocess.run([*prefix, *llem_cmd(), *args], capture_output=True, text=True,
                       env=subprocess_env() | {"COLUMNS": "400"} | extra, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == case.code, (p.returncode, out)
    assert "Traceback" not in out, out
    named = [ln for ln in out.splitlines() if all(e in ln for e in case.expect)]
    assert len(named) == 1, (case.expect, out)  # one line names the culprit, unbroken
    if not case.fault and case.code == 2:
        assert p.stdout == "" and p.stderr.count("\n") == 1, out
        assert p.stderr.startswith("error: "), out
    after = _tree(tmp_path)
    if case.fault:
        assert set(before) <= set(after), set(before) - set(after)  # nothing deleted
    else:
        assert after == before  # no study directory, no file written or changed
    if case.check:
        case.check(p, tmp_path)


def test_run_failing_after_another_finished_keeps_and_counts_it(
        finished_study: tuple[Path, str]) -> None:
    """A run failing at run time (a hub dataset that cannot be fetched) after another has
    finished: exit 1, the finished run kept, valid and counted, one line naming the failed
    run and its log, and the log naming the dataset."""
    from llem.results.io import load_result

    study, out = finished_study
    assert "Traceback" not in out
    assert "1/2 run(s) done, 1 failed" in out, out
    failed = [ln for ln in out.splitlines() if ln.startswith("failed ")]
    assert len(failed) == 1 and "e001-" in failed[0] and "harness.log" in failed[0], out
    (done,) = study.glob(DONE_RESULT)
    assert load_result(done).run_id.endswith("cycle-0")
    (log,) = study.glob("e001-*/cycle-0/harness.log")
    assert "workload.dataset: cannot load 'no-such-org/no-such-set'" in log.read_text()


def test_resume_runs_a_finished_run_whose_result_was_damaged(
        finished_study: tuple[Path, str], tmp_path: Path) -> None:
    """A result.json cut short after its run finished is not counted as done: resuming
    measures that run again and leaves the failed one (no retries left) as it was."""
    study, _ = finished_study
    shutil.copytree(study, tmp_path / "results" / study.name)
    (tmp_path / "finished.yaml").write_text(FINISHED_YAML)
    _damage(DONE_RESULT)(tmp_path)
    p = subprocess.run([*llem_cmd(), "run", str(tmp_path / "finished.yaml"), "--resume",
                        "--results-dir", str(tmp_path / "results"), "-q"],
                       capture_output=True, text=True, timeout=600,
                       env=subprocess_env() | {"COLUMNS": "400", "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 1 and "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    _damaged_runs_again(p, tmp_path)


def test_run_help_states_the_limit() -> None:
    p = subprocess.run([*llem_cmd(), "run", "--help"], capture_output=True, text=True,
                       env=subprocess_env() | {"COLUMNS": "200"}, timeout=60)
    assert f"more than {MAX_RUNS_UNCONFIRMED} runs" in p.stdout
