"""Bad input: exit 2, exactly one line on stderr, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import llem_cmd, subprocess_env

CASES = {
    "typo_key": ("workload:\n  batchsize: 4\n", "did you mean 'batch_size'"),
    "wrong_type": ("workload:\n  batch_size: four\n", "workload.batch_size"),
    "negative_batch": ("workload:\n  batch_size: -2\n", "workload.batch_size"),
    "unknown_backend": ("backend: onnxruntime\n", "backend"),
    "empty_file": ("", "empty"),
    "yaml_syntax": ("workload:\n  batch_size: [1, 2\n", "line 3, column 1"),
    "top_level_list": ("- a\n- b\n", "top level must be a mapping"),
    "bad_sweep_path": ("sweep:\n  workload.batchsz: [1, 2]\n", "did you mean 'batch_size'"),
    "bad_sweep_value": ("sweep:\n  workload.batch_size: [1, 0]\n", "batch_size"),
    "study_typo": ("study:\n  cylces: 3\n", "did you mean 'cycles'"),
    "unknown_preset": ("preset: quik-test\n", "did you mean 'quick-test'"),
}


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        llem_cmd() + args, capture_output=True, text=True, env=subprocess_env(), timeout=60
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_validate_bad_input(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    f = tmp_path / f"{case}.yaml"
    f.write_text(text)
    p = _run(["config", "validate", str(f)])
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert str(f) in lines[0] or case == "unknown_backend"
    assert expected in lines[0], lines[0]


def test_missing_file(tmp_path: Path) -> None:
    p = _run(["config", "validate", str(tmp_path / "nope.yaml")])
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "file not found" in p.stderr


def test_run_bad_backend_flag_is_one_line() -> None:
    p = _run(["run", "--backend", "tensorflow", "--dry-run"])
    assert p.returncode == 2 and "unknown backend" in p.stderr and "Traceback" not in p.stderr


def test_valid_file_passes(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text("model: builtin:tiny-llama\nworkload:\n  batch_size: 2\n")
    p = _run(["config", "validate", str(f)])
    assert p.returncode == 0 and "valid experiment" in p.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--bogus"], "llem run: No such option: --bogus"),
        (["results", "show"], "llem results show: Missing argument"),
        (["run", "--max-parallel", "two"], "Invalid value for '--max-parallel'"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], expected: str) -> None:
    """Click's usage errors too: one line naming the command and the option, exit 2."""
    p = _run(args)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "--help" in lines[0]


def test_no_arguments_prints_help() -> None:
    p = _run([])
    assert p.returncode == 2
    assert "Usage: llem" in p.stdout and "Traceback" not in p.stderr


@pytest.mark.parametrize("make_bad, expect", [
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "Not a directory"),
    (lambda tmp: tmp / ("n" * 300), "too long"),
])
def test_filesystem_errors_are_one_line_naming_the_path(tmp_path, make_bad, expect) -> None:
    """A results dir that is a file, or a name too long for the filesystem: one line, exit 2,
    no traceback (issue 15)."""
    bad = make_bad(tmp_path)
    proc = subprocess.run(
        [*llem_cmd(), "config", "new", "-o", str(bad / "exp.yaml")],
        capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expect in lines[0] and str(bad)[:40] in lines[0]
